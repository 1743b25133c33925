#include "engine/pool.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

namespace otr {

namespace {

// A heavy task is taken at least once in this many picks while light ones wait.
constexpr unsigned kHeavyEvery = 4;

// On a machine with fewer cores than busy threads, the JS thread competes with the pool for
// CPU; a pool thread holding a core for a scheduler time slice (milliseconds) stalls the
// event loop. Pool threads yield to it: a lower priority and the batch policy (no wakeup
// preemption). Only idle CPU is given up, so throughput stays; failure here changes nothing.
void YieldToTheEventLoop() {
  sched_param param{};
  pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 5);
}

uint64_t Nanos(std::chrono::steady_clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

}  // namespace

Pool& Pool::Get() {
  // Never destroyed: its threads outlive every static destructor (and run no N-API code).
  static Pool* pool = new Pool();
  return *pool;
}

void Pool::SetThreads(size_t threads) {
  threads = std::max<size_t>(threads, 1);
  std::lock_guard<std::mutex> lock(mutex_);
  active_ = threads;
  while (threads_.size() < threads) {
    auto* added = new PoolThread();
    const size_t index = threads_.size();
    threads_.push_back(added);
    added->thread = std::thread([this, added, index] {
      YieldToTheEventLoop();
      Serve(added, index, false);
    });
    // Named for operators (top -H, /proc/PID/task/*/comm) and for the tests that check
    // libotr's work runs on these threads; named here, so the name is there on return.
    pthread_setname_np(added->thread.native_handle(), "protocol-otr");
    added->thread.detach();
  }
  if (express_ == nullptr) {
    express_ = new PoolThread();
    // Normal priority, unlike the others: it runs only cheap tasks, and a cheap message
    // should preempt public-key work on a busy machine rather than wait for its time slice.
    // Its own name, so that operators and the bench tell its CPU time from the pool's.
    express_->thread = std::thread([this, express = express_] { Serve(express, 0, true); });
    pthread_setname_np(express_->thread.native_handle(), "protocol-otr-ex");
    express_->thread.detach();
  }
  // One courier for the process: a second would race the first over `flushing_`, which
  // ForgetFlushes relies on to know the courier is done with an engine.
  if (!courierStarted_) {
    courierStarted_ = true;
    std::thread courier([this] { Courier(); });
    pthread_setname_np(courier.native_handle(), "protocol-otr-dl");
    courier.detach();
  }
  wake_.notify_all();
}

size_t Pool::Threads() {
  std::lock_guard<std::mutex> lock(mutex_);
  return active_;
}

void Pool::Submit(TaskOwner* owner, uint32_t tag, bool heavy) {
  bool parked;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    (heavy ? heavy_ : light_).push_back(Task{owner, tag});
    parked = threads_.size() > active_;
  }
  // A parked thread (beyond the size set last) would take the wake-up and not the task, and
  // the express thread does not take heavy ones.
  if (parked || heavy)
    wake_.notify_all();
  else
    wake_.notify_one();
}

size_t Pool::Cancel(TaskOwner* owner) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t removed = 0;
  for (auto* queue : {&light_, &heavy_}) {
    const auto end = std::remove_if(queue->begin(), queue->end(), [&](const Task& t) { return t.owner == owner; });
    removed += static_cast<size_t>(queue->end() - end);
    queue->erase(end, queue->end());
  }
  return removed;
}

bool Pool::NothingQueued() {
  std::lock_guard<std::mutex> lock(mutex_);
  return light_.empty() && heavy_.empty();
}

size_t Pool::Queued() {
  std::lock_guard<std::mutex> lock(mutex_);
  return light_.size() + heavy_.size();
}

std::vector<ThreadStats> Pool::Stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ThreadStats> stats;
  for (size_t i = 0; i < threads_.size() && i < active_; ++i) stats.push_back(threads_[i]->stats);
  if (express_ != nullptr) stats.push_back(express_->stats);
  return stats;
}

bool Pool::NextTask(Task& task) {
  std::deque<Task>* from = nullptr;
  if (!heavy_.empty() && (light_.empty() || ++picks_ % kHeavyEvery == 0))
    from = &heavy_;
  else if (!light_.empty())
    from = &light_;
  if (from == nullptr) return false;
  task = from->front();
  from->pop_front();
  return true;
}

// A pool thread (`index`; it parks while beyond the size set last) or, with `express`, the
// express thread, which takes light tasks only. Never returns.
void Pool::Serve(PoolThread* self, size_t index, bool express) {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    Task task{};
    wake_.wait(lock,
               [&] { return express ? !light_.empty() : index < active_ && (!light_.empty() || !heavy_.empty()); });
    if (express) {
      task = light_.front();
      light_.pop_front();
    } else if (!NextTask(task)) {
      continue;
    }
    lock.unlock();
    const auto started = std::chrono::steady_clock::now();
    task.owner->RunTask(task.tag);
    const uint64_t spent = Nanos(std::chrono::steady_clock::now() - started);
    lock.lock();
    self->stats.busyNs += spent;
    self->stats.tasks += 1;
  }
}

void Pool::FlushAt(FlushOwner* owner, std::chrono::steady_clock::time_point when) {
  bool earliest = false;  // the courier sleeps until a later time: wake it
  {
    std::lock_guard<std::mutex> lock(courierMutex_);
    auto found = std::find_if(flushes_.begin(), flushes_.end(), [&](const auto& f) { return f.first == owner; });
    if (found != flushes_.end()) {
      if (when >= found->second) return;
      found->second = when;
    } else {
      flushes_.emplace_back(owner, when);
    }
    earliest = std::all_of(flushes_.begin(), flushes_.end(), [&](const auto& f) { return f.second >= when; });
  }
  if (earliest) courierWake_.NotifyAll();  // ForgetFlushes waits on the same variable
}

void Pool::ForgetFlushes(FlushOwner* owner) {
  std::unique_lock<std::mutex> lock(courierMutex_);
  flushes_.erase(std::remove_if(flushes_.begin(), flushes_.end(), [&](const auto& f) { return f.first == owner; }),
                 flushes_.end());
  courierWake_.Wait(lock, [&] { return flushing_ != owner; });
}

void Pool::Courier() {
  std::unique_lock<std::mutex> lock(courierMutex_);
  for (;;) {
    if (flushes_.empty()) {
      courierWake_.Wait(lock);
      continue;
    }
    auto next = std::min_element(flushes_.begin(), flushes_.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
    const auto when = next->second;
    const auto now = std::chrono::steady_clock::now();
    if (when > now) {
      courierWake_.WaitUntil(lock, when);
      continue;
    }
    FlushOwner* owner = next->first;
    flushes_.erase(next);
    flushing_ = owner;
    lock.unlock();
    owner->FlushDue(now);
    lock.lock();
    flushing_ = nullptr;
    courierWake_.NotifyAll();
  }
}

}  // namespace otr
