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

// An object the addon builds for JS (contract.h, EncodeFields): field by field.
class ObjectWriter {
 public:
  explicit ObjectWriter(Napi::Env env) : env_(env), object_(Napi::Object::New(env)) {}
  void Number(const char* name, double value) { object_.Set(name, Napi::Number::New(env_, value)); }
  void String(const char* name, const std::string& text) {
    object_.Set(name, Napi::Value(env_, MakeString(env_, text)));
  }
  template <typename T>
  void List(const char* name, const std::vector<T>& items) {
    Napi::Array list = Napi::Array::New(env_, items.size());
    for (uint32_t i = 0; i < items.size(); ++i) list.Set(i, ToJs(env_, items[i]));
    object_.Set(name, list);
  }
  Napi::Object object() const { return object_; }

  template <typename T>
  static Napi::Object ToJs(Napi::Env env, const T& from) {
    ObjectWriter out(env);
    EncodeFields(from, out);
    return out.object();
  }

 private:
  Napi::Env env_;
  Napi::Object object_;
};

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
      return ObjectWriter::ToJs(env, *batch.value.account);
    default:
      return Napi::Value();
  }
}

// [kind, channel id, numbers…, values…] (contract.h, kQuerySlots); an absent value is undefined.
Napi::Value QueryToJs(Napi::Env env, const Query& query) {
  struct Writer {
    Napi::Env env;
    Napi::Array array;
    void Number(size_t slot, double value) {
      array.Set(static_cast<uint32_t>(2 + slot), Napi::Number::New(env, value));
    }
    void String(size_t slot, const std::string& text) { Set(slot, MakeString(env, text)); }
    void Set(size_t slot, napi_value value) {
      array.Set(static_cast<uint32_t>(2 + kQueryNumberSlots + slot), Napi::Value(env, value));
    }
  } out{env, Napi::Array::New(env, kQuerySlots)};
  out.array.Set(0u, Napi::Number::New(env, static_cast<int>(query.kind)));
  out.array.Set(1u, Napi::Number::New(env, query.channel));
  for (size_t slot = 0; slot < kQueryNumberSlots; ++slot) out.Number(slot, 0);
  std::visit([&](const auto& payload) { payload.Encode(out); }, query.payload);
  return out.array;
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
  const napi_status status = IsAscii(text) ? napi_create_string_latin1(env, text.data(), text.size(), &value)
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

namespace {

// Writes an effect's payload into its slots (contract.h, each payload's Encode): numbers after
// (kind, channel), then the indexes of its values in the list.
class EffectWriter {
 public:
  EffectWriter(Napi::Env env, double* slots, ValueList& list) : env_(env), slots_(slots), list_(list) {
    for (size_t i = 0; i < kEffectNumberSlots; ++i) slots_[2 + i] = 0;
    for (size_t i = 0; i < kEffectValueSlots; ++i) slots_[2 + kEffectNumberSlots + i] = kNone;
  }
  void Number(size_t slot, double value) { slots_[2 + slot] = value; }
  void String(size_t slot, const std::string& text) { Value(slot, MakeString(env_, text)); }
  void Bytes(size_t slot, const std::string& bytes) {
    Value(slot, Napi::Buffer<char>::Copy(env_, bytes.data(), bytes.size()));
  }
  template <typename T>
  void Object(size_t slot, const T& object) {
    Value(slot, ObjectWriter::ToJs(env_, object));
  }

 private:
  void Value(size_t slot, napi_value value) { slots_[2 + kEffectNumberSlots + slot] = list_.Add(value); }

  Napi::Env env_;
  double* slots_;
  ValueList& list_;
};

}  // namespace

void Encode(Napi::Env env, const Delivery& delivery, double* nums, std::vector<napi_value>& values) {
  ValueList list(values);
  size_t at = 0;
  for (const auto& batch : delivery.batches) {
    const uint32_t flags = (batch->done ? uint32_t{kBatchDone} : 0) | (batch->ok ? uint32_t{kBatchOk} : 0);
    WriteBatchHeader(nums + at, batch->job, flags, list.Add(ResultToJs(env, *batch)),
                     batch->query ? list.Add(QueryToJs(env, *batch->query)) : kNone,
                     static_cast<double>(batch->effects.size()));
    at += kBatchSlots;
    for (const Effect& effect : batch->effects) {
      nums[at] = static_cast<int>(effect.kind);
      nums[at + 1] = effect.channel;
      EffectWriter out(env, nums + at, list);
      std::visit([&](const auto& payload) { payload.Encode(out); }, effect.payload);
      at += kEffectSlots;
    }
  }
}

}  // namespace otr
