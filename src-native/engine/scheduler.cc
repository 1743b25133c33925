// An instance's jobs on the process-wide pool: a strand per channel (its jobs one at a time,
// in call order), instance-wide jobs as barriers (they start when every job queued before
// them has finished, and jobs queued after them wait), what each kind of job is expected to
// cost, and the questions jobs wait on. The states jobs run on: lender_states.h; where their
// results go: outbox.h.
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <thread>
#include <utility>

#include "engine/engine.h"
#include "io/files.h"
#include "util/wipe.h"

namespace otr {

thread_local OtrlUserState tViewing = nullptr;

namespace {

// A job that ran this long did public-key work: the strand's next job of the same kind is
// expected to (JobCost::kLikeLast*), and the pool runs it after cheap ones, never on express.
constexpr std::chrono::microseconds kHeavyJob{1000};
// At most this many jobs of one strand in a row on one thread (see RunTask).
constexpr unsigned kBurstJobs = 32;

std::chrono::nanoseconds ThreadCpuTime() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

}  // namespace

Engine::Engine(Poster post) : outbox_(std::move(post), this) { us_ = otrl_userstate_create(); }

Engine::~Engine() { Shutdown(); }

void Engine::Start() {
  Pool& pool = Pool::Get();
  if (pool.Threads() == 0) pool.SetThreads(std::max(1u, std::thread::hardware_concurrency()));
  std::lock_guard<std::mutex> lock(mutex_);
  started_ = true;
}

void Engine::Enqueue(Job job) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_) return;
  ++notStarted_;
  if (!waiting_.empty() || globalRunning_) {
    waiting_.push_back(std::move(job));
  } else if (job.strand != kInstanceWide) {
    Admit(std::move(job));
  } else if (admitted_ == 0) {
    StartGlobal(std::move(job));
  } else {
    waiting_.push_back(std::move(job));
  }
}

void Engine::Admit(Job job) {
  const uint32_t key = job.strand;
  Strand& strand = strands_[key];
  strand.jobs.push_back(std::move(job));
  ++admitted_;
  // One pool task per strand at a time: the next is submitted when this one's job ends.
  if (!strand.running && strand.jobs.size() == 1) {
    ++inPool_;
    Pool::Get().Submit(this, key, Expensive(strand.jobs.front()));
  }
}

bool Engine::Expensive(const Job& job) const {
  switch (job.cost) {
    case JobCost::kCheap:
      return false;
    case JobCost::kExpensive:
      return true;
    case JobCost::kLikeLastRead:
    case JobCost::kLikeLastWrite: {
      const uint8_t bit = job.cost == JobCost::kLikeLastRead ? kLastReadExpensive : kLastWriteExpensive;
      auto found = lastCosts_.find(job.strand);
      if (found == lastCosts_.end()) return job.cost == JobCost::kLikeLastRead;
      return (found->second & bit) != 0;
    }
  }
  return true;
}

// A thread's CPU clock is a system call (about a microsecond, more than many cheap jobs take
// on a virtual machine), so it is read only around jobs expected to take a millisecond, or
// whose last like job took one by the wall clock without being measured.
bool Engine::MeasureCpu(const Job& job) const {
  if (job.cost != JobCost::kLikeLastRead && job.cost != JobCost::kLikeLastWrite) return false;
  if (Expensive(job)) return true;
  auto found = lastCosts_.find(job.strand);
  const uint8_t unsure = job.cost == JobCost::kLikeLastRead ? kLastReadUnsure : kLastWriteUnsure;
  return found != lastCosts_.end() && (found->second & unsure) != 0;
}

// CPU time, not wall time, says whether a job did public-key work: a cheap job the kernel
// preempted on a busy machine is still cheap. Under a millisecond of wall time it was cheap
// in any case; at a millisecond or more unmeasured (`cpu` negative), it is measured next time.
void Engine::Learn(const Job& job, std::chrono::nanoseconds wall, std::chrono::nanoseconds cpu) {
  if (job.cost != JobCost::kLikeLastRead && job.cost != JobCost::kLikeLastWrite) return;
  const bool read = job.cost == JobCost::kLikeLastRead;
  const uint8_t expensive = read ? kLastReadExpensive : kLastWriteExpensive;
  const uint8_t unsure = read ? kLastReadUnsure : kLastWriteUnsure;
  uint8_t& last = lastCosts_.try_emplace(job.strand, kLastReadExpensive).first->second;
  if (cpu.count() >= 0) {
    last = static_cast<uint8_t>(cpu >= kHeavyJob ? (last | expensive) : (last & ~expensive));
    last = static_cast<uint8_t>(last & ~unsure);
  } else if (wall < kHeavyJob) {
    last = static_cast<uint8_t>(last & ~(expensive | unsure));
  } else {
    last = static_cast<uint8_t>(last | unsure);
  }
}

void Engine::ForgetLastCosts(uint32_t channelId) {
  std::lock_guard<std::mutex> lock(mutex_);
  lastCosts_.erase(channelId);
}

void Engine::StartGlobal(Job job) {
  globalRunning_ = true;
  global_ = std::move(job);
  ++inPool_;
  Pool::Get().Submit(this, kInstanceWide, false);
}

void Engine::Drain() {
  while (!waiting_.empty() && !globalRunning_) {
    if (waiting_.front().strand == kInstanceWide) {
      if (admitted_ != 0) return;
      Job next = std::move(waiting_.front());
      waiting_.pop_front();
      StartGlobal(std::move(next));
      return;
    }
    Job next = std::move(waiting_.front());
    waiting_.pop_front();
    Admit(std::move(next));
  }
}

void Engine::RunTask(uint32_t tag) {
  const bool global = tag == kInstanceWide;
  Job job;
  bool measureCpu = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --inPool_;
    if (stopping_) {
      wake_.notify_all();
      return;
    }
    if (global) {
      job = std::move(global_);
    } else {
      Strand& strand = strands_[tag];
      job = std::move(strand.jobs.front());
      strand.jobs.pop_front();
      strand.running = true;
    }
    --notStarted_;
    ++running_;
    ++working_;
    measureCpu = MeasureCpu(job);
  }
  OtrlUserState us = global ? us_ : nullptr;
  // A strand's next cheap job runs on this thread right away while no other task waits for a
  // thread: no hand-over to another thread per message. Bounded, so a busy strand still
  // takes turns with others.
  for (unsigned burst = 1;; ++burst) {
    if (us == nullptr) us = lenders_.Borrow();
    const auto started = std::chrono::steady_clock::now();
    const auto cpuStarted = measureCpu ? ThreadCpuTime() : std::chrono::nanoseconds{0};
    Execute(job, us);
    const auto spent = std::chrono::steady_clock::now() - started;
    const auto cpu = measureCpu ? ThreadCpuTime() - cpuStarted : std::chrono::nanoseconds{-1};
    job.run = nullptr;  // frees what the job captured (message text: wiped by the job itself)
    bool idle;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      idle = notStarted_ == 0;
    }
    // Still counted as running: no instance-wide job (close()) can start, and Shutdown waits.
    if (idle) FlushFingerprintsWhenIdle();
    // A job that ran this long (a key rotation, an AKE or SMP step) has its result sent at once.
    if (idle || spent >= Outbox::kLongestHold) outbox_.Send();
    // Returned while still counted as running: Shutdown frees the states once nothing runs.
    if (!global) {
      lenders_.Return(us);
      us = nullptr;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    --running_;
    if (global) {
      globalRunning_ = false;
    } else {
      auto found = strands_.find(tag);
      if (found != strands_.end()) {
        Strand& strand = found->second;
        strand.running = false;
        Learn(job, spent, cpu);
        --admitted_;
        if (strand.jobs.empty()) {
          strands_.erase(found);
        } else if (!stopping_ && !Expensive(strand.jobs.front()) && burst < kBurstJobs && Pool::Get().NothingQueued()) {
          job = std::move(strand.jobs.front());
          strand.jobs.pop_front();
          strand.running = true;  // still counted in admitted_ since it was queued
          --notStarted_;
          ++running_;
          ++working_;
          measureCpu = MeasureCpu(job);
          continue;
        } else {
          ++inPool_;
          Pool::Get().Submit(this, tag, Expensive(strand.jobs.front()));
        }
      }
    }
    if (!stopping_ && admitted_ == 0) Drain();
    if (stopping_) wake_.notify_all();
    break;
  }
}

void Engine::Shutdown() {
  if (shutDown_) return;
  shutDown_ = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    strands_.clear();
    waiting_.clear();
    admitted_ = 0;
  }
  wake_.notify_all();  // a job waiting for a JS answer takes the default
  const size_t cancelled = Pool::Get().Cancel(this);
  {
    std::unique_lock<std::mutex> lock(mutex_);
    inPool_ -= cancelled;
    wake_.wait(lock, [this] { return running_ == 0 && inPool_ == 0; });
  }
  // No job runs or will run: nothing can post to the outbox or ask the courier any more.
  Pool::Get().ForgetFlushes(this);
  outbox_.Clear();
  StopKeygens();
  FreeUserstate();
}

void Engine::Answer(const std::shared_ptr<Query>& query, bool hasString, std::string text, int64_t number) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    query->hasString = hasString;
    query->answer = std::move(text);
    query->number = number;
    query->answered = true;
  }
  wake_.notify_all();
}

void Engine::AnswerDefault(const std::shared_ptr<Query>& query) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    query->answered = true;
  }
  wake_.notify_all();
}

void Engine::Execute(Job& job, OtrlUserState us) {
  CallScope scope;
  scope.engine = this;
  scope.us = us;
  scope.job = job.id;
  auto* batch = new Batch();
  batch->job = job.id;
  if (closed_) {
    batch->ok = false;
    batch->failure = MakeFailure("ERR_OTR_CLOSED", "this OTR instance is closed");
  } else {
    job.run(*this, scope, *batch);
  }
  batch->effects = std::move(scope.effects);
  batch->done = !scope.deferred;
  // Counted as finished before its result can reach JS: stats() read once a promise settled
  // never shows that call as running.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --working_;
  }
  jobsDone_.fetch_add(1, std::memory_order_relaxed);
  if (!batch->done && batch->effects.empty()) {
    delete batch;
    return;
  }
  if (!batch->done) batch->job = 0;  // effects of a deferred job belong to no waiting call yet
  outbox_.Add(batch);
}

void Engine::FlushDue(std::chrono::steady_clock::time_point now) { outbox_.SendIfDue(now); }

bool Engine::Ask(CallScope& scope, const std::shared_ptr<Query>& query) {
  auto* batch = new Batch();
  batch->job = scope.job;
  batch->done = false;
  batch->effects = std::move(scope.effects);
  scope.effects.clear();
  batch->query = query;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      delete batch;
      return false;
    }
  }
  if (!outbox_.SendWith(batch)) return false;  // the outbox goes with the question, in order
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait(lock, [&] { return stopping_ || query->answered; });
  return query->answered;
}

EngineStats Engine::Stats() {
  EngineStats stats;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats.queued = notStarted_;
    stats.running = working_;
    stats.strands = strands_.size();
  }
  stats.contacts = index_.ContactCount();
  stats.tombstones = index_.TombstoneCount();
  stats.channels = index_.ChannelCount();
  stats.userStates = (us_ != nullptr ? 1 : 0) + lenders_.Count();
  stats.sessions = sessions_.load(std::memory_order_relaxed);
  stats.jobs = jobsDone_.load(std::memory_order_relaxed);
  stats.deliveries = outbox_.Deliveries();
  stats.batches = outbox_.Batches();
  stats.effects = outbox_.Effects();
  return stats;
}

// libotr's poll looks at every contact: the home state holds them all while an instance-wide
// job runs.
void Engine::Poll(CallScope& scope) {
  lenders_.PollWith(us_, [&] { otrl_message_poll(us_, ops(), &scope); });
}

}  // namespace otr
