#include "napi/marshal.h"

#include "util/wipe.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace otr {

namespace {

constexpr double kNone = -1;

bool IsAscii(const std::string& text) {
  const char* at = text.data();
  const char* end = at + text.size();
  uint64_t high = 0;
  for (; end - at >= 8; at += 8) {
    uint64_t word;
    std::memcpy(&word, at, sizeof word);
    high |= word;
  }
  for (; at < end; ++at) high |= static_cast<unsigned char>(*at);
  return (high & 0x8080808080808080ULL) == 0;
}

Napi::Object ContactToJs(Napi::Env env, const ContactState& state) {
  Napi::Object contact = Napi::Object::New(env);
  contact.Set("contact", Napi::Number::New(env, static_cast<double>(state.contactId)));
  contact.Set("flags", Napi::Number::New(env, state.flags));
  contact.Set("account", state.account);
  contact.Set("protocol", state.protocol);
  contact.Set("username", state.username);
  contact.Set("current", Napi::Number::New(env, state.current));
  contact.Set("status", Napi::Number::New(env, static_cast<int>(state.status)));
  Napi::Array sessions = Napi::Array::New(env, state.sessions.size());
  for (uint32_t i = 0; i < state.sessions.size(); ++i) {
    Napi::Object session = Napi::Object::New(env);
    session.Set("instag", Napi::Number::New(env, state.sessions[i].instag));
    session.Set("status", Napi::Number::New(env, static_cast<int>(state.sessions[i].status)));
    session.Set("fingerprint", state.sessions[i].fingerprint);
    sessions.Set(i, session);
  }
  contact.Set("sessions", sessions);
  Napi::Array fingerprints = Napi::Array::New(env, state.fingerprints.size());
  for (uint32_t i = 0; i < state.fingerprints.size(); ++i) {
    Napi::Object fp = Napi::Object::New(env);
    fp.Set("hex", state.fingerprints[i].hex);
    fp.Set("trust", state.fingerprints[i].trust);
    fp.Set("status", Napi::Number::New(env, static_cast<int>(state.fingerprints[i].status)));
    fingerprints.Set(i, fp);
  }
  contact.Set("fingerprints", fingerprints);
  return contact;
}

Napi::Object AccountToJs(Napi::Env env, const AccountState& account) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("name", account.name);
  object.Set("protocol", account.protocol);
  object.Set("fingerprint", account.fingerprint);
  object.Set("instag", Napi::Number::New(env, account.instag));
  return object;
}

// An effect in the dispatcher's layout (lib/native.ts): two numbers, a text and an extra
// value, whose meaning depends on the kind.
struct EffectSlots {
  double a = 0;
  double b = 0;
  const std::string* text = nullptr;
  Napi::Value extra;
};

EffectSlots SlotsOf(Napi::Env env, const Effect& effect) {
  EffectSlots slots;
  std::visit(
      [&](const auto& p) {
        using P = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<P, WirePayload>) {
          slots.text = &p.text;
        } else if constexpr (std::is_same_v<P, ReadPayload>) {
          slots.a = (p.encrypted ? 1 : 0) | (p.verified ? 2 : 0);
          slots.b = p.instag;
          slots.text = &p.text;
          if (!p.fingerprint.empty()) slots.extra = Napi::Value(env, MakeString(env, p.fingerprint));
        } else if constexpr (std::is_same_v<P, SessionRestartPayload>) {
          slots.a = p.instag;
        } else if constexpr (std::is_same_v<P, UnverifiedInstancePayload>) {
          slots.a = p.instag;
          slots.text = &p.human;
        } else if constexpr (std::is_same_v<P, StillSecurePayload>) {
          slots.a = p.isReply ? 1 : 0;
        } else if constexpr (std::is_same_v<P, NewFingerprintPayload>) {
          slots.a = p.seenBefore ? 1 : 0;
          slots.text = &p.human;
        } else if constexpr (std::is_same_v<P, SymkeyPayload>) {
          slots.a = p.use;
          slots.text = &p.useData;
          Napi::Array pair = Napi::Array::New(env, 2);
          pair.Set(0u, Napi::Buffer<char>::Copy(env, p.key.data(), p.key.size()));
          pair.Set(1u, Napi::Buffer<char>::Copy(env, p.useData.data(), p.useData.size()));
          slots.extra = pair;
        } else if constexpr (std::is_same_v<P, TimerPayload>) {
          slots.a = p.interval;
        } else if constexpr (std::is_same_v<P, SmpPayload>) {
          slots.a = p.event;
          slots.b = p.progress;
          if (p.hasQuestion) slots.text = &p.question;
        } else if constexpr (std::is_same_v<P, MessageEventPayload>) {
          slots.a = p.event;
          if (p.hasText) slots.text = &p.text;
        } else if constexpr (std::is_same_v<P, ContactStatePayload>) {
          slots.extra = ContactToJs(env, *p.state);
        } else if constexpr (std::is_same_v<P, AccountPayload>) {
          slots.extra = AccountToJs(env, *p.account);
        } else if constexpr (std::is_same_v<P, ErrorPayload>) {
          slots.text = &p.code;
          slots.extra = Napi::String::New(env, p.message);
        } else if constexpr (std::is_same_v<P, SkippedLinePayload>) {
          slots.a = static_cast<double>(p.line);
          slots.text = &p.reason;
          slots.extra = Napi::String::New(env, p.copy);
        }
      },
      effect.payload);
  return slots;
}

Napi::Value ResultToJs(Napi::Env env, const Batch& batch) {
  if (!batch.ok) {
    Napi::Object failure = Napi::Object::New(env);
    failure.Set("code", batch.failure.code);
    failure.Set("message", batch.failure.message);
    return failure;
  }
  switch (batch.value.type) {
    case ResultValue::Type::Bool:
      return Napi::Boolean::New(env, batch.value.flag);
    case ResultValue::Type::Bytes:
      return Napi::Buffer<char>::Copy(env, batch.value.bytes.data(), batch.value.bytes.size());
    case ResultValue::Type::Account:
      return AccountToJs(env, *batch.value.account);
    default:
      return Napi::Value();
  }
}

Napi::Value QueryToJs(Napi::Env env, const Query& query) {
  Napi::Array q = Napi::Array::New(env, 4);
  q.Set(0u, Napi::Number::New(env, static_cast<int>(query.kind)));
  q.Set(1u, Napi::Number::New(env, query.channel));
  q.Set(2u, Napi::Number::New(env, static_cast<double>(query.code)));
  q.Set(3u, Napi::Value(env, MakeString(env, query.text)));
  return q;
}

class ValueList {
 public:
  // Values are appended after what `values` already holds; indices count from there.
  explicit ValueList(std::vector<napi_value>& values) : values_(values), base_(values.size()) {}

  // The index `value` gets in the list, or kNone for an empty value.
  double Add(napi_value value) {
    if (value == nullptr) return kNone;
    values_.push_back(value);
    return static_cast<double>(values_.size() - 1 - base_);
  }

 private:
  std::vector<napi_value>& values_;
  size_t base_;
};

}  // namespace

napi_value MakeString(napi_env env, const std::string& text) {
  napi_value value = nullptr;
  const napi_status status = IsAscii(text)
                                 ? napi_create_string_latin1(env, text.data(), text.size(), &value)
                                 : napi_create_string_utf8(env, text.data(), text.size(), &value);
  NAPI_THROW_IF_FAILED(env, status, nullptr);
  return value;
}

namespace {

// Small strings (nearly every message) go through one fixed buffer per thread, reused, so
// they cost one copy and no allocation; it is wiped after each use (it holds message text)
// and left out of core dumps. Larger strings are measured and copied once, exactly.
constexpr size_t kScratchBytes = 64 * 1024;

struct Scratch {
  char* data = nullptr;
  Scratch() {
    void* mapped = ::mmap(nullptr, kScratchBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) return;
    ::madvise(mapped, kScratchBytes, MADV_DONTDUMP);
    data = static_cast<char*>(mapped);
  }
  ~Scratch() {
    if (data != nullptr) ::munmap(data, kScratchBytes);
  }
};

}  // namespace

bool ReadString(napi_env env, napi_value value, std::string& out) {
  size_t units = 0;
  if (napi_get_value_string_utf16(env, value, nullptr, 0, &units) != napi_ok) return false;
  // A UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair, 2 units, is 4 bytes).
  static thread_local Scratch scratch;
  size_t written = 0;
  if (units * 3 + 1 <= kScratchBytes && scratch.data != nullptr) {
    if (napi_get_value_string_utf8(env, value, scratch.data, kScratchBytes, &written) != napi_ok) return false;
    out.assign(scratch.data, written);
    Wipe(scratch.data, written);
    return true;
  }
  size_t bytes = 0;
  if (napi_get_value_string_utf8(env, value, nullptr, 0, &bytes) != napi_ok) return false;
  out.resize(bytes + 1);
  if (napi_get_value_string_utf8(env, value, &out[0], bytes + 1, &written) != napi_ok) return false;
  out.resize(written);
  return true;
}

size_t SlotsFor(const Delivery& delivery) {
  size_t slots = 0;
  for (const auto& batch : delivery.batches) slots += kBatchSlots + kEffectSlots * batch->effects.size();
  return slots;
}

void Encode(Napi::Env env, const Delivery& delivery, double* nums, std::vector<napi_value>& values) {
  ValueList list(values);
  size_t at = 0;
  for (const auto& batch : delivery.batches) {
    nums[at++] = batch->job;
    nums[at++] = (batch->done ? kBatchDone : 0) | (batch->ok ? kBatchOk : 0);
    nums[at++] = list.Add(ResultToJs(env, *batch));
    nums[at++] = batch->query ? list.Add(QueryToJs(env, *batch->query)) : kNone;
    nums[at++] = static_cast<double>(batch->effects.size());
    for (const Effect& effect : batch->effects) {
      const EffectSlots slots = SlotsOf(env, effect);
      nums[at++] = static_cast<int>(effect.kind);
      nums[at++] = effect.channel;
      nums[at++] = slots.a;
      nums[at++] = slots.b;
      nums[at++] = slots.text != nullptr ? list.Add(MakeString(env, *slots.text)) : kNone;
      nums[at++] = list.Add(slots.extra);
    }
  }
}

}  // namespace otr
