// Finished results on their way to JS (docs/DESIGN.md, "Deliveries"). Batches wait here and
// go over together, one wake-up of the JS thread for many jobs: when nothing of the instance
// is left to start, when 128 callbacks or 256 KB of text have gathered, right after a long
// job, with a question a job waits on, and when the oldest batch has waited 200 µs (the
// courier's real timer, pool.h), whatever the threads are running.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/effects.h"
#include "engine/pool.h"

namespace otr {

class Outbox : public FlushOwner {
 public:
  using Poster = std::function<bool(Delivery*)>;  // false: JS is gone, the delivery is dropped
  static constexpr std::chrono::microseconds kLongestHold{200};

  explicit Outbox(Poster post) : post_(std::move(post)) {}

  // Takes the batch; sends the outbox when it is full or its oldest batch is due.
  void Add(Batch* batch);
  void Send();
  // Sends the outbox ending with `question` (taken); false if JS will not see it.
  bool SendWith(Batch* question);
  // The courier: sends the outbox if its oldest batch is due, else asks to come back then.
  void FlushDue(std::chrono::steady_clock::time_point now) override;
  // JS thread: a delivery whose batches were taken, to be sent again. Reused, its list keeps
  // the room it grew to: without it the outbox's list started empty after every delivery and
  // grew again, an allocation per doubling.
  void Return(std::unique_ptr<Delivery> delivery);
  void Clear();

  uint64_t Deliveries() const { return deliveries_.load(std::memory_order_relaxed); }
  uint64_t Batches() const { return batches_.load(std::memory_order_relaxed); }
  uint64_t Effects() const { return effects_.load(std::memory_order_relaxed); }

 private:
  bool SendLocked();  // under mutex_

  Poster post_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Batch>> waiting_;
  static constexpr size_t kSpareDeliveries = 4;
  std::vector<std::unique_ptr<Delivery>> spare_;
  size_t waitingBytes_ = 0;
  size_t waitingEffects_ = 0;
  std::chrono::steady_clock::time_point since_;
  std::atomic<uint64_t> deliveries_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> effects_{0};
};

}  // namespace otr
