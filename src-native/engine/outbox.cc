#include "engine/outbox.h"

namespace otr {

namespace {

// Enough to amortise the hop to the JS thread, small enough that handling one delivery
// (its callbacks, and the strings they carry) stays around a millisecond. Counted in
// effects (callbacks), not jobs: one fragmented write alone makes dozens of onWrite calls.
constexpr size_t kEffectsPerDelivery = 128;
constexpr size_t kTextBytesPerDelivery = 256 * 1024;

}  // namespace

void Outbox::Add(Batch* batch) {
  std::chrono::steady_clock::time_point due;
  bool arm = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (waiting_.empty()) {
      since_ = now;
      arm = true;
    }
    for (const Effect& effect : batch->effects) waitingBytes_ += effect.TextBytes();
    waitingEffects_ += batch->effects.size() + 1;  // the settling of the call counts too
    waiting_.emplace_back(batch);
    if (waitingEffects_ >= kEffectsPerDelivery || waitingBytes_ >= kTextBytesPerDelivery ||
        now - since_ >= kLongestHold) {
      SendLocked();
      arm = false;
    }
    due = since_ + kLongestHold;
  }
  if (arm) Pool::Get().FlushAt(this, due);
}

void Outbox::Send() {
  std::lock_guard<std::mutex> lock(mutex_);
  SendLocked();
}

bool Outbox::SendWith(Batch* question) {
  std::lock_guard<std::mutex> lock(mutex_);
  waiting_.emplace_back(question);
  return SendLocked();
}

void Outbox::FlushDue(std::chrono::steady_clock::time_point now) {
  std::chrono::steady_clock::time_point due;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (waiting_.empty()) return;
    due = since_ + kLongestHold;
    if (now >= due) {
      SendLocked();
      return;
    }
  }
  Pool::Get().FlushAt(this, due);
}

void Outbox::Return(std::unique_ptr<Delivery> delivery) {
  delivery->batches.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  if (spare_.size() < kSpareDeliveries) spare_.push_back(std::move(delivery));
}

void Outbox::Clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  waiting_.clear();
  waitingBytes_ = 0;
  waitingEffects_ = 0;
}

bool Outbox::SendLocked() {
  waitingBytes_ = 0;
  waitingEffects_ = 0;
  if (waiting_.empty()) return true;
  Delivery* delivery;
  if (spare_.empty()) {
    delivery = new Delivery();
  } else {
    delivery = spare_.back().release();
    spare_.pop_back();
  }
  // The list the outbox fills next is the spare's, with the room it had grown to.
  delivery->batches.swap(waiting_);
  uint64_t effects = 0;
  for (const auto& batch : delivery->batches) effects += batch->effects.size();
  deliveries_.fetch_add(1, std::memory_order_relaxed);
  batches_.fetch_add(delivery->batches.size(), std::memory_order_relaxed);
  effects_.fetch_add(effects, std::memory_order_relaxed);
  if (post_(delivery)) return true;
  delete delivery;
  return false;
}

}  // namespace otr
