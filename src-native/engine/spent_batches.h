// Batches JS has applied, on their way back to a pool thread to be freed. A batch is built on
// a pool thread, so its memory belongs to that thread's allocator arena; freed on the JS thread,
// every free would take that arena's lock while the pool thread allocates from it, and under
// load the JS thread blocked on those locks (most of its futex calls in `fanin`). The JS thread
// wipes what a batch carries and hands it over here, one lock per chunk; the next job on a pool
// thread frees what is waiting. The call a job ran (its captured arguments, allocated on the JS
// thread) goes the other way: the batch carries it back and the JS thread frees it.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "engine/effects.h"

namespace otr {

class SpentBatches {
 public:
  // Past this many waiting (an instance gone quiet after a burst), the JS thread frees them itself.
  static constexpr size_t kMostWaiting = 4096;

  // JS thread: takes the applied batches, their secrets already wiped.
  void Add(std::vector<std::unique_ptr<Batch>>& batches) {
    std::vector<std::unique_ptr<Batch>> overflow;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& batch : batches) waiting_.push_back(std::move(batch));
      if (waiting_.size() > kMostWaiting) overflow.swap(waiting_);
      any_.store(!waiting_.empty(), std::memory_order_release);
    }
    batches.clear();
  }

  // Pool thread, between jobs: frees what waits.
  void Free() {
    if (!any_.load(std::memory_order_acquire)) return;
    std::vector<std::unique_ptr<Batch>> freeing;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      freeing.swap(waiting_);
      any_.store(false, std::memory_order_release);
    }
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<Batch>> waiting_;
  std::atomic<bool> any_{false};
};

}  // namespace otr
