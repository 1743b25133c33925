// A strand's jobs in call order. A ring that keeps its room while the strand has work: a
// std::deque allocates a block every few jobs as a busy strand's queue moves on (a job holds
// the call's arguments, so only a few fit a block), an allocation per few messages.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "engine/job.h"

namespace otr {

class JobQueue {
 public:
  // Room kept by a strand that ran dry (Shrink); more is freed. A job is 136 bytes on x86-64,
  // and the scheduler keeps 64 dry strands for reuse: at most ~140 KB an instance.
  static constexpr size_t kKeptRoom = 16;

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  Job& front() { return ring_[head_]; }

  void push_back(Job job) {
    if (size_ == ring_.size()) Grow();
    ring_[(head_ + size_) & (ring_.size() - 1)] = std::move(job);
    ++size_;
  }

  // The front job, moved from already, leaves what it held with its slot cleared.
  void pop_front() {
    ring_[head_] = Job{};
    head_ = (head_ + 1) & (ring_.size() - 1);
    --size_;
  }

  void Shrink() {
    if (size_ == 0 && ring_.size() > kKeptRoom) {
      std::vector<Job>().swap(ring_);
      head_ = 0;
    }
  }

 private:
  void Grow() {
    std::vector<Job> bigger(ring_.empty() ? 4 : ring_.size() * 2);
    for (size_t i = 0; i < size_; ++i) bigger[i] = std::move(ring_[(head_ + i) & (ring_.size() - 1)]);
    ring_.swap(bigger);
    head_ = 0;
  }

  std::vector<Job> ring_;  // a power of two long (or empty)
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace otr
