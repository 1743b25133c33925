// Batches JS has applied, on their way back to the pool threads to be reused or freed. A batch
// is built on a pool thread, so its memory belongs to that thread's allocator arena; freed on
// the JS thread, every free would take that arena's lock while the pool thread allocates from
// it, and under load the JS thread blocked on those locks (most of its futex calls in `fanin`).
// The JS thread wipes what a batch carries and hands it over here, one lock per chunk; the next
// job on a pool thread takes what is waiting and keeps some for the results it builds next
// (a batch and its list of effects are then no allocation), freeing the rest. The call a job ran (its captured
// arguments, allocated on the JS thread) goes the other way: the batch carries it back and the JS thread frees it.
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
  // Spare batches a pool thread keeps (shared by every instance whose jobs it runs).
  static constexpr size_t kSparesPerThread = 256;

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

  // Pool thread, between jobs: takes what waits, keeps up to kSparesPerThread for this
  // thread's next results and frees the rest.
  void Collect() {
    if (!any_.load(std::memory_order_acquire)) return;
    // Swapped with the list JS fills, so that both keep their room (no allocation per chunk).
    thread_local std::vector<std::unique_ptr<Batch>> taken;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      taken.swap(waiting_);
      any_.store(false, std::memory_order_release);
    }
    auto& spares = Spares();
    for (auto& batch : taken) {
      if (spares.size() >= kSparesPerThread) break;
      // Emptied now: what its effects carried (a message may be megabytes) is freed here, only
      // the batch and its list's room are kept.
      batch->Reset();
      spares.push_back(std::move(batch));
    }
    taken.clear();  // frees those not kept
  }

  // Pool thread: a batch to build a result in, as new: a spare of this thread's, or allocated.
  static Batch* Spare() {
    auto& spares = Spares();
    if (spares.empty()) return new Batch();
    Batch* batch = spares.back().release();
    spares.pop_back();
    return batch;
  }

 private:
  static std::vector<std::unique_ptr<Batch>>& Spares() {
    thread_local std::vector<std::unique_ptr<Batch>> spares;
    return spares;
  }

  std::mutex mutex_;
  std::vector<std::unique_ptr<Batch>> waiting_;
  std::atomic<bool> any_{false};
};

}  // namespace otr
