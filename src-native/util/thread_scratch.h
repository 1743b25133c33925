// A list one call at a time on a thread fills and empties, keeping its room between calls: for
// the lists a job builds for every message (a vector made per message is an allocation per
// message). A nested use on the same thread, should there be one, gets a list of its own.
#pragma once

#include <vector>

namespace otr {

template <typename T, typename Purpose>
class ThreadScratch {
 public:
  ThreadScratch() : list_(Borrow()) { list_.clear(); }
  ~ThreadScratch() {
    list_.clear();
    if (&list_ == &Shared()) InUse() = false;
  }
  ThreadScratch(const ThreadScratch&) = delete;
  ThreadScratch& operator=(const ThreadScratch&) = delete;

  std::vector<T>& operator*() { return list_; }
  std::vector<T>* operator->() { return &list_; }

 private:
  std::vector<T>& Borrow() {
    if (InUse()) return own_;
    InUse() = true;
    return Shared();
  }
  static std::vector<T>& Shared() {
    thread_local std::vector<T> shared;
    return shared;
  }
  static bool& InUse() {
    thread_local bool inUse = false;
    return inUse;
  }

  std::vector<T> own_;
  std::vector<T>& list_;
};

}  // namespace otr
