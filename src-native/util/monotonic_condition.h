// A condition variable whose timed wait runs on CLOCK_MONOTONIC through pthread_cond_timedwait.
// libstdc++'s std::condition_variable::wait_until(steady_clock) calls pthread_cond_clockwait,
// which needs glibc 2.30: the prebuilt binary would not load on glibc 2.28 (RHEL 8 and its
// rebuilds), the oldest glibc Node 20 itself runs on.
#pragma once

#include <pthread.h>
#include <time.h>

#include <chrono>
#include <mutex>

namespace otr {

class MonotonicCondition {
 public:
  MonotonicCondition() {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&cond_, &attr);
    pthread_condattr_destroy(&attr);
  }
  ~MonotonicCondition() { pthread_cond_destroy(&cond_); }
  MonotonicCondition(const MonotonicCondition&) = delete;
  MonotonicCondition& operator=(const MonotonicCondition&) = delete;

  void Wait(std::unique_lock<std::mutex>& lock) { pthread_cond_wait(&cond_, lock.mutex()->native_handle()); }
  template <typename Predicate>
  void Wait(std::unique_lock<std::mutex>& lock, Predicate ready) {
    while (!ready()) Wait(lock);
  }
  // steady_clock is CLOCK_MONOTONIC on Linux (libstdc++ and libc++ alike).
  void WaitUntil(std::unique_lock<std::mutex>& lock, std::chrono::steady_clock::time_point when) {
    const auto since = when.time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since);
    timespec deadline{};
    deadline.tv_sec = static_cast<time_t>(seconds.count());
    deadline.tv_nsec = static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(since - seconds).count());
    pthread_cond_timedwait(&cond_, lock.mutex()->native_handle(), &deadline);
  }
  void NotifyAll() { pthread_cond_broadcast(&cond_); }

 private:
  pthread_cond_t cond_;
};

}  // namespace otr
