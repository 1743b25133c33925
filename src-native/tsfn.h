// One small owner for a napi_threadsafe_function: the worker posts through it, the JS thread
// refs/unrefs and aborts it. It knows when Node has already finalised the function (the
// environment is going away), so nothing touches a dead handle, and it aborts in its
// destructor so a forgotten close() cannot leave the function keeping the loop alive.
#pragma once

#include <node_api.h>

#include <atomic>
#include <memory>

namespace otr {

class SafeThreadsafeFunction {
 public:
  SafeThreadsafeFunction() = default;
  SafeThreadsafeFunction(const SafeThreadsafeFunction&) = delete;
  SafeThreadsafeFunction& operator=(const SafeThreadsafeFunction&) = delete;
  ~SafeThreadsafeFunction() { Abort(); }

  // JS thread. The function starts unref'd: an idle instance never keeps the process alive.
  napi_status Start(napi_env env, napi_value fn, const char* name, void* context,
                    napi_threadsafe_function_call_js deliver) {
    napi_value resourceName;
    napi_status status = napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resourceName);
    if (status != napi_ok) return status;
    auto* alive = new std::shared_ptr<Liveness>(liveness_);
    status = napi_create_threadsafe_function(env, fn, nullptr, resourceName, 0, 1, alive, Finalize,
                                             context, deliver, &handle_);
    if (status != napi_ok) {
      delete alive;
      handle_ = nullptr;
      return status;
    }
    return napi_unref_threadsafe_function(env, handle_);
  }

  // Any thread. False when the function is closing; the caller still owns `data` then.
  bool Post(void* data) {
    if (handle_ == nullptr || liveness_->finalized.load()) return false;
    return napi_call_threadsafe_function(handle_, data, napi_tsfn_nonblocking) == napi_ok;
  }

  // JS thread.
  void SetKeepsLoopAlive(napi_env env, bool keep) {
    if (handle_ == nullptr || liveness_->finalized.load()) return;
    if (keep) {
      napi_ref_threadsafe_function(env, handle_);
    } else {
      napi_unref_threadsafe_function(env, handle_);
    }
  }

  // JS thread (or environment teardown). Idempotent. Items still queued are handed to the
  // deliver callback with a null env so they can be freed.
  void Abort() {
    if (handle_ != nullptr && !liveness_->finalized.load()) {
      napi_release_threadsafe_function(handle_, napi_tsfn_abort);
    }
    handle_ = nullptr;
  }

 private:
  struct Liveness {
    std::atomic<bool> finalized{false};
  };

  static void Finalize(napi_env, void* data, void*) {
    auto* alive = static_cast<std::shared_ptr<Liveness>*>(data);
    (*alive)->finalized.store(true);
    delete alive;
  }

  napi_threadsafe_function handle_ = nullptr;
  std::shared_ptr<Liveness> liveness_ = std::make_shared<Liveness>();
};

}  // namespace otr
