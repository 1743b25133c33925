// Secrets and message text (SMP answers, key-file bytes, symmetric keys, plaintext) are
// overwritten before their memory is freed or reused, so they do not linger in the heap for
// a core dump or a later read of freed memory to find.
#pragma once

#include <string.h>

#include <string>

namespace otr {

inline void Wipe(void* data, size_t size) {
  if (data != nullptr && size > 0) explicit_bzero(data, size);
}

// The whole buffer, not only the current size: a string that shrank keeps its old bytes.
inline void Wipe(std::string& text) {
  text.resize(text.capacity());
  Wipe(&text[0], text.size());
  text.clear();
}

// Wipes the given strings when the scope ends, however it ends.
template <size_t N>
class WipeOnExit {
 public:
  template <typename... Strings>
  explicit WipeOnExit(Strings&... strings) : strings_{&strings...} {}
  ~WipeOnExit() {
    for (std::string* text : strings_) Wipe(*text);
  }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  std::string* strings_[N];
};

template <typename... Strings>
WipeOnExit(Strings&...) -> WipeOnExit<sizeof...(Strings)>;

}  // namespace otr
