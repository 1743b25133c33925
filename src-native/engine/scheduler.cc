// The scheduler (scheduler.h): strands, the instance-wide barrier, what jobs are expected to
// cost and what they cost, and the questions jobs wait on.
#include "engine/scheduler.h"

#include <time.h>

#include <algorithm>
#include <thread>
#include <utility>

namespace otr {

namespace {

// A job that ran this long did public-key work: the strand's next job of the same kind is
// expected to (JobCost::kLikeLast*), and the pool runs it after cheap ones, never on express.
constexpr std::chrono::microseconds kHeavyJob{1000};
// At most this many jobs of one strand in a row on one thread (see RunTask), and at most this
// many while other tasks wait for a thread: a cheap job takes a few microseconds, so the others
// wait tens of microseconds at most, and the strand saves a hand-over through the pool per job.
constexpr unsigned kBurstJobs = 32;
constexpr unsigned kBurstJobsWhileOthersWait = 8;

std::chrono::nanoseconds ThreadCpuTime() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

}  // namespace

void Scheduler::JobClock::Start() {
  started_ = std::chrono::steady_clock::now();
  if (measureCpu_) cpuStarted_ = ThreadCpuTime();
}

void Scheduler::JobClock::Stop() {
  wall_ = std::chrono::steady_clock::now() - started_;
  if (measureCpu_) cpu_ = ThreadCpuTime() - cpuStarted_;
}

void Scheduler::Start() {
  Pool& pool = Pool::Get();
  if (pool.Threads() == 0) pool.SetThreads(std::max(1u, std::thread::hardware_concurrency()));
}

void Scheduler::Enqueue(Job job) {
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

void Scheduler::Admit(Job job) {
  const uint32_t key = job.strand;
  auto found = strands_.find(key);
  if (found == strands_.end()) {
    if (spareStrands_.empty()) {
      found = strands_.try_emplace(key).first;
    } else {
      auto node = std::move(spareStrands_.back());
      spareStrands_.pop_back();
      node.key() = key;
      found = strands_.insert(std::move(node)).position;
    }
  }
  Strand& strand = found->second;
  strand.jobs.push_back(std::move(job));
  ++admitted_;
  // One pool task per strand at a time: the next is submitted when this one's job ends.
  if (!strand.running && strand.jobs.size() == 1) {
    ++inPool_;
    Pool::Get().Submit(this, key, Expensive(strand.jobs.front()));
  }
}

bool Scheduler::Expensive(const Job& job) const {
  switch (job.cost) {
    case JobCost::kCheap:
      return false;
    case JobCost::kExpensive:
      return true;
    case JobCost::kLikeLastRead:
    case JobCost::kLikeLastWrite: {
      const unsigned bit = job.cost == JobCost::kLikeLastRead ? kLastReadExpensive : kLastWriteExpensive;
      auto found = lastCosts_.find(job.strand);
      if (found == lastCosts_.end()) return job.cost == JobCost::kLikeLastRead;
      const LastCosts& last = found->second;
      if (job.cost == JobCost::kLikeLastRead) {
        if ((last.flags & kSmpUnderway) != 0) return true;
        if (MayStartSmp(job.dataMessageLength, last.dataMessageLength)) return true;
      }
      return (last.flags & bit) != 0;
    }
  }
  return true;
}

// A thread's CPU clock is a system call (about a microsecond, more than many cheap jobs take
// on a virtual machine), so it is read only around jobs expected to take a millisecond, or
// whose last like job took one by the wall clock without being measured.
bool Scheduler::MeasureCpu(const Job& job) const {
  if (job.cost != JobCost::kLikeLastRead && job.cost != JobCost::kLikeLastWrite) return false;
  if (Expensive(job)) return true;
  auto found = lastCosts_.find(job.strand);
  const unsigned unsure = job.cost == JobCost::kLikeLastRead ? kLastReadUnsure : kLastWriteUnsure;
  return found != lastCosts_.end() && (found->second.flags & unsure) != 0;
}

// CPU time, not wall time, says whether a job did public-key work: a cheap job the kernel
// preempted on a busy machine is still cheap. Under a millisecond of wall time it was cheap
// in any case; at a millisecond or more unmeasured (`cpu` negative), it is measured next time.
// An SMP step comes inside a data message: while the contact is inside an SMP (after any of
// its jobs), its next data message is expected to be the next step (tens of milliseconds of
// public-key work) however cheap its last one was, and is kept off the express thread. A
// peer's first step is announced by nothing but its length (MayStartSmp).
void Scheduler::Learn(const Job& job, std::chrono::nanoseconds wall, std::chrono::nanoseconds cpu, bool smpUnderway) {
  const bool learns = job.cost == JobCost::kLikeLastRead || job.cost == JobCost::kLikeLastWrite;
  auto found = lastCosts_.find(job.strand);
  if (found == lastCosts_.end()) {
    if (!learns && !smpUnderway) return;  // absent already says what there is to say
    found = lastCosts_.try_emplace(job.strand).first;
  }
  LastCosts& last = found->second;
  last.flags = smpUnderway ? (last.flags | kSmpUnderway) : (last.flags & ~kSmpUnderway);
  if (job.dataMessageLength != 0) last.dataMessageLength = job.dataMessageLength;
  if (!learns) return;
  const bool read = job.cost == JobCost::kLikeLastRead;
  const unsigned expensive = read ? kLastReadExpensive : kLastWriteExpensive;
  const unsigned unsure = read ? kLastReadUnsure : kLastWriteUnsure;
  if (cpu.count() >= 0) {
    last.flags = (cpu >= kHeavyJob ? (last.flags | expensive) : (last.flags & ~expensive)) & ~unsure;
  } else if (wall < kHeavyJob) {
    last.flags &= ~(expensive | unsure);
  } else {
    last.flags |= unsure;
  }
}

void Scheduler::ForgetLastCosts(uint32_t channelId) {
  std::lock_guard<std::mutex> lock(mutex_);
  lastCosts_.erase(channelId);
}

void Scheduler::StartGlobal(Job job) {
  globalRunning_ = true;
  global_ = std::move(job);
  ++inPool_;
  Pool::Get().Submit(this, kInstanceWide, false);
}

void Scheduler::Drain() {
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

void Scheduler::RunTask(uint32_t tag) {
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
  // A strand's next cheap job runs on this thread right away: no hand-over to another thread
  // per message. Bounded, so a busy strand still takes turns with others (sooner when other
  // tasks wait for a thread).
  for (unsigned burst = 1;; ++burst) {
    // Still counted as running meanwhile: no instance-wide job (close()) can start, and Stop
    // waits.
    JobClock clock(measureCpu);
    const bool smpUnderway = runner_.RunJob(job, clock);
    std::lock_guard<std::mutex> lock(mutex_);
    --running_;
    if (global) {
      globalRunning_ = false;
    } else {
      auto found = strands_.find(tag);
      if (found != strands_.end()) {
        Strand& strand = found->second;
        strand.running = false;
        Learn(job, clock.Wall(), clock.Cpu(), smpUnderway);
        --admitted_;
        if (strand.jobs.empty()) {
          // Kept for the next strand to start: with light load every job starts one, and a
          // new map node and deque would be three allocations (see kSpareStrands).
          strand.jobs.Shrink();
          auto node = strands_.extract(found);
          if (spareStrands_.size() < kSpareStrands) spareStrands_.push_back(std::move(node));
        } else if (!stopping_ && !Expensive(strand.jobs.front()) && burst < kBurstJobs &&
                   (burst < kBurstJobsWhileOthersWait || Pool::Get().NothingQueued())) {
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

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    strands_.clear();
    waiting_.clear();
    admitted_ = 0;
  }
  wake_.notify_all();  // a job waiting for a JS answer takes the default
  const size_t cancelled = Pool::Get().Cancel(this);
  std::unique_lock<std::mutex> lock(mutex_);
  inPool_ -= cancelled;
  wake_.wait(lock, [this] { return running_ == 0 && inPool_ == 0; });
}

void Scheduler::Answer(const std::shared_ptr<Query>& query, bool hasString, std::string text, int64_t number) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    query->hasString = hasString;
    query->answer = std::move(text);
    query->number = number;
    query->answered = true;
  }
  wake_.notify_all();
}

void Scheduler::AnswerDefault(const std::shared_ptr<Query>& query) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    query->answered = true;
  }
  wake_.notify_all();
}

void Scheduler::CountFinished() {
  std::lock_guard<std::mutex> lock(mutex_);
  --working_;
}

bool Scheduler::NothingToStart() {
  std::lock_guard<std::mutex> lock(mutex_);
  return notStarted_ == 0;
}

bool Scheduler::Stopping() {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopping_;
}

bool Scheduler::AwaitAnswer(const std::shared_ptr<Query>& query) {
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait(lock, [&] { return stopping_ || query->answered; });
  return query->answered;
}

Scheduler::Counts Scheduler::Count() {
  std::lock_guard<std::mutex> lock(mutex_);
  Counts counts;
  counts.queued = notStarted_;
  counts.running = working_;
  counts.strands = strands_.size();
  return counts;
}

}  // namespace otr
