// The process-wide threads that run libotr's work for every OTR instance, and the courier
// that sends finished results to JS on a real timer.
//
// A task is one step of one contact's strand (or one instance-wide job): the pool runs it on
// whichever thread is free. Tasks expected to do no public-key work go first ("light", see
// job_cost.h), so a cheap message is not queued behind other contacts' key rotations and SMP
// steps; a heavy task is still taken at least every few picks, so nothing starves. One more thread, the express
// thread, runs light tasks only: when every other thread is inside a long step (an SMP step
// takes tens of milliseconds), a cheap message still finds a thread, and the kernel shares
// the cores between them. Many OTR instances share these threads: their number follows the
// machine, not the number of instances.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "util/monotonic_condition.h"

namespace otr {

// Whose tasks the pool runs (an instance's scheduler).
class TaskOwner {
 public:
  virtual ~TaskOwner() = default;
  // Runs one task of this owner on a pool thread; `tag` is what Submit was given.
  virtual void RunTask(uint32_t tag) = 0;
};

// Whom the courier calls back (an instance's outbox).
class FlushOwner {
 public:
  virtual ~FlushOwner() = default;
  // Sends finished results to JS (the courier, on its own thread).
  virtual void FlushDue(std::chrono::steady_clock::time_point now) = 0;
};

struct ThreadStats {
  uint64_t busyNs = 0;  // time spent running tasks
  uint64_t tasks = 0;
};

class Pool {
 public:
  static Pool& Get();

  // Threads to run tasks on (at least 1). Growing starts threads at once; shrinking lets the
  // extra ones end after their current task.
  void SetThreads(size_t threads);
  size_t Threads();

  void Submit(TaskOwner* owner, uint32_t tag, bool heavy);
  // Drops the owner's queued tasks; returns how many. Running ones are the owner's to wait for.
  size_t Cancel(TaskOwner* owner);
  // Queued tasks of every owner, and per-thread figures.
  size_t Queued();
  // No task of any owner waits for a thread.
  bool NothingQueued();
  std::vector<ThreadStats> Stats();

  // The courier calls owner->FlushDue() at `when` (the earliest time asked for wins).
  void FlushAt(FlushOwner* owner, std::chrono::steady_clock::time_point when);
  // After this returns the courier neither calls nor will call `owner`.
  void ForgetFlushes(FlushOwner* owner);

 private:
  Pool() = default;
  struct Task {
    TaskOwner* owner;
    uint32_t tag;
  };
  struct PoolThread {
    std::thread thread;
    ThreadStats stats;
  };
  void Serve(PoolThread* self, size_t index, bool express);
  void Courier();
  bool NextTask(Task& task);  // under mutex_

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Task> light_, heavy_;
  unsigned picks_ = 0;
  // Never shrinks: the threads beyond the size set last park (see Serve) until it grows again.
  std::vector<PoolThread*> threads_;
  size_t active_ = 0;  // threads that take tasks (the express thread aside)
  PoolThread* express_ = nullptr;

  std::mutex courierMutex_;
  MonotonicCondition courierWake_;
  std::vector<std::pair<FlushOwner*, std::chrono::steady_clock::time_point>> flushes_;
  FlushOwner* flushing_ = nullptr;
  bool courierStarted_ = false;  // under mutex_
};

}  // namespace otr
