// One small owner for a napi_threadsafe_function: pool threads post through it, the JS thread
// refs/unrefs and aborts it, and it aborts in its destructor so a forgotten close() cannot
// leave the function keeping the loop alive.
//
// It gives Node no finalize callback. The only ways the function closes are our Abort() and
// Node's own cleanup hook at environment teardown, and the Handle registers its cleanup hook
// after creating the function, so its hook (which aborts) runs first: Abort() always comes
// before Node could close the function, and nothing needs telling that Node did. Without a
// finalize callback Node also runs no callback scope for it at teardown (V8 allocations then
// can start a garbage collection at the worst moment; see docs/RELIABILITY.md).
#pragma once

#include <node_api.h>

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
    status = napi_create_threadsafe_function(env, fn, nullptr, resourceName, 0, 1, nullptr, nullptr, context, deliver,
                                             &handle_);
    if (status != napi_ok) {
      handle_ = nullptr;
      return status;
    }
    return napi_unref_threadsafe_function(env, handle_);
  }

  // Any thread but never after Abort() (the Engine's threads are joined before it). False
  // when the function is closing; the caller still owns `data` then.
  bool Post(void* data) {
    if (handle_ == nullptr) return false;
    return napi_call_threadsafe_function(handle_, data, napi_tsfn_nonblocking) == napi_ok;
  }

  // JS thread. Only uv_ref/uv_unref of the function's handle: nothing to fail once it exists.
  void SetKeepsLoopAlive(napi_env env, bool keep) {
    if (handle_ == nullptr) return;
    if (keep) {
      napi_ref_threadsafe_function(env, handle_);
    } else {
      napi_unref_threadsafe_function(env, handle_);
    }
  }

  // JS thread (or environment teardown). Idempotent. Items still queued are handed to the
  // deliver callback with a null env so they can be freed. The release fails only for a
  // function already released, which handle_ = nullptr rules out.
  void Abort() {
    if (handle_ != nullptr) napi_release_threadsafe_function(handle_, napi_tsfn_abort);
    handle_ = nullptr;
  }

 private:
  napi_threadsafe_function handle_ = nullptr;
};

}  // namespace otr
