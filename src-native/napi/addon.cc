// The addon's one class: a handle JS holds per OTR instance. It turns JS calls into jobs for
// the Engine, and the Engine's batches back into one call of the JS dispatcher.
//
// Lifetimes: the Engine lives exactly as long as this handle. dispose() (after close()), the
// garbage collector's finalizer, and the environment cleanup hook all end it the same way:
// Engine::Shutdown() (stop its jobs and wait for those running, free libotr's state), then
// abort the thread-safe function. Whichever comes first does it; the others find nothing left
// to do. A Node worker thread (worker_threads) being terminated cannot run JS: node-addon-api
// then drops the exception it cannot throw instead of aborting the process (see Deliver).
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#include <napi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "napi/delivery_queue.h"
#include "napi/file_functions.h"
#include "napi/marshal.h"
#include "napi/tsfn.h"
#include "otr/init.h"

namespace otr {

namespace {

std::string StringArg(const Napi::CallbackInfo& info, size_t index) {
  std::string text;
  if (index >= info.Length() || !info[index].IsString() || !ReadString(info.Env(), info[index], text)) {
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(index) + " must be a string");
  }
  return text;
}

// The longest name, in UTF-8 bytes; lib/native.ts checks lib/validate.ts has the same.
constexpr size_t kMaxNameBytes = 255;

// A string with a lone surrogate: UTF-8 has no form for it, and N-API would write U+FFFD, the
// same bytes as another name.
bool WellFormedUtf16(napi_env env, napi_value value) {
  size_t units = 0;
  if (napi_get_value_string_utf16(env, value, nullptr, 0, &units) != napi_ok) return false;
  std::vector<char16_t> text(units + 1);
  if (napi_get_value_string_utf16(env, value, text.data(), text.size(), &units) != napi_ok) return false;
  for (size_t i = 0; i < units; ++i) {
    const char16_t unit = text[i];
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      if (i + 1 >= units || text[i + 1] < 0xDC00 || text[i + 1] > 0xDFFF) return false;
      ++i;
    } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
      return false;
    }
  }
  return true;
}

// Account, protocol and contact names: what lib/validate.ts requires (requireName), again,
// because a tab or newline in a name would be written unescaped into libotr's files.
std::string NameArg(const Napi::CallbackInfo& info, size_t index) {
  std::string name = StringArg(info, index);
  if (!WellFormedUtf16(info.Env(), info[index])) {
    Napi::Error error = Napi::TypeError::New(
        info.Env(), "argument " + std::to_string(index) + " must be a name of well-formed Unicode (no lone surrogate)");
    error.Set("code", "ERR_OTR_INVALID_ARGUMENT");
    throw error;
  }
  bool control = false;
  for (unsigned char c : name) control = control || c < 0x20 || c == 0x7f;
  if (name.empty() || control || name.size() > kMaxNameBytes) {
    Napi::Error error = Napi::TypeError::New(
        info.Env(), "argument " + std::to_string(index) + " must be a name: 1 to 255 bytes, no control characters");
    error.Set("code", "ERR_OTR_INVALID_ARGUMENT");
    throw error;
  }
  return name;
}

int64_t NumberArg(const Napi::CallbackInfo& info, size_t index) {
  if (index >= info.Length() || !info[index].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(index) + " must be a number");
  }
  return info[index].As<Napi::Number>().Int64Value();
}

// A JS Contact's id (lib/contact.ts): a whole number from 0 (none) to 2^53.
uint64_t ContactIdArg(const Napi::CallbackInfo& info, size_t index) {
  const int64_t id = NumberArg(info, index);
  if (id < 0 || id > (int64_t{1} << 53))
    throw Napi::RangeError::New(info.Env(), "a contact id is a whole number from 0 to 2^53");
  return static_cast<uint64_t>(id);
}

// { maxInstancesPerContact, maxFragmentedSize, maxIncomingSize, keyWorkPerWindow,
// keyWorkWindowMs }: validated in lib/otr.ts; checked again here because they bound memory
// and CPU.
Limits LimitsArg(const Napi::CallbackInfo& info, size_t index) {
  Limits limits;
  if (index >= info.Length() || !info[index].IsObject()) return limits;
  Napi::Object given = info[index].As<Napi::Object>();
  auto read = [&](const char* name, size_t& field) {
    Napi::Value value = given.Get(name);
    if (value.IsUndefined()) return;
    const double number = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
    if (!(number >= 1 && number <= 4294967295.0)) {
      Napi::Error error = Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer from 1 to 2^32-1");
      error.Set("code", "ERR_OTR_INVALID_ARGUMENT");
      throw error;
    }
    field = static_cast<size_t>(number);
  };
  read("maxInstancesPerContact", limits.maxInstancesPerContact);
  read("maxFragmentedSize", limits.maxReassembledBytes);
  read("maxIncomingSize", limits.maxIncomingBytes);
  size_t keyWork = limits.keyWorkPerWindow;
  size_t windowMs = static_cast<size_t>(limits.keyWorkWindow.count());
  read("keyWorkPerWindow", keyWork);
  read("keyWorkWindowMs", windowMs);
  limits.keyWorkPerWindow = static_cast<uint32_t>(keyWork);
  limits.keyWorkWindow = std::chrono::milliseconds(windowMs);
  return limits;
}

// Reads a channel op's arguments in order, from `first` on: what each op's Decode asks for
// (contract.h). The caller's mistakes throw a TypeError or RangeError naming the argument.
class OpArgReader {
 public:
  OpArgReader(const Napi::CallbackInfo& info, size_t first) : info_(info), next_(first) {}

  void String(std::string& out) { out = StringArg(info_, next_++); }
  void OptionalString(bool& has, std::string& out) {
    has = next_ < info_.Length() && !info_[next_].IsUndefined();
    if (has) out = StringArg(info_, next_);
    ++next_;
  }
  void Bytes(std::string& out) {
    const size_t index = next_++;
    if (index >= info_.Length() || !info_[index].IsBuffer()) {
      throw Napi::TypeError::New(info_.Env(), "argument " + std::to_string(index) + " must be a Buffer");
    }
    auto buffer = info_[index].As<Napi::Buffer<char>>();
    out.assign(buffer.Data(), buffer.Length());
  }
  void Uint32(uint32_t& out) { out = static_cast<uint32_t>(Integer(0, 0xffffffffLL)); }
  void Int32(int& out) { out = static_cast<int>(Integer(INT32_MIN, INT32_MAX)); }
  void Uint64(uint64_t& out) { out = static_cast<uint64_t>(Integer(0, int64_t{1} << 53)); }
  void Bool(bool& out) {
    out = next_ < info_.Length() && info_[next_].ToBoolean();
    ++next_;
  }

 private:
  int64_t Integer(int64_t min, int64_t max) {
    const size_t index = next_++;
    const int64_t value = NumberArg(info_, index);
    if (value < min || value > max) {
      throw Napi::RangeError::New(info_.Env(), "argument " + std::to_string(index) + " is out of range");
    }
    return value;
  }

  const Napi::CallbackInfo& info_;
  size_t next_;
};

}  // namespace

class Handle : public Napi::ObjectWrap<Handle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Handle",
                       {
                           InstanceMethod<&Handle::TakeLoadedState>("takeLoadedState"),
                           InstanceMethod<&Handle::EnsureAccount>("ensureAccount"),
                           InstanceMethod<&Handle::AddContact>("addContact"),
                           InstanceMethod<&Handle::SetTrust>("setTrust"),
                           InstanceMethod<&Handle::ForgetFingerprint>("forgetFingerprint"),
                           InstanceMethod<&Handle::ForgetContact>("forgetContact"),
                           InstanceMethod<&Handle::RenameContact>("renameContact"),
                           InstanceMethod<&Handle::OpenChannel>("openChannel"),
                           InstanceMethod<&Handle::ChannelCall>("channelOp"),
                           InstanceMethod<&Handle::CloseEngine>("close"),
                           InstanceMethod<&Handle::Dispose>("dispose"),
                           InstanceMethod<&Handle::Stats>("stats"),
                           InstanceMethod<&Handle::ResumeDeliveries>("resumeDeliveries"),
                       });
  }

  // new Handle(instanceId, dispatch, privkeysPath, fingerprintsPath, instagsPath, limits)
  explicit Handle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Handle>(info), env_(info.Env()) {
    const std::string& initFailure = InitialiseLibraries();
    if (!initFailure.empty()) {
      Napi::Error error = Napi::Error::New(info.Env(), initFailure);
      error.Set("code", "ERR_OTR_INIT");
      throw error;
    }
    instanceId_ = static_cast<uint32_t>(NumberArg(info, 0));
    const Limits limits = LimitsArg(info, 5);
    if (info.Length() < 2 || !info[1].IsFunction())
      throw Napi::TypeError::New(info.Env(), "dispatch must be a function");
    NAPI_THROW_IF_FAILED_VOID(env_, deliver_.Start(env_, info[1], "protocol-otr", this, Deliver));
    dispatch_ = Napi::Persistent(info[1].As<Napi::Function>());
    FilePaths paths{StringArg(info, 2), StringArg(info, 3), StringArg(info, 4)};
    engine_ = std::make_unique<Engine>([this](Delivery* delivery) { return deliver_.Post(delivery); });
    engine_->SetLimits(limits);
    // The files are read here, before any job can run, so accounts and contacts are visible
    // as soon as the constructor returns and a file that cannot be used fails the constructor.
    CallScope scope;
    scope.engine = engine_.get();
    scope.us = engine_->home();
    Batch loaded;
    engine_->Load(scope, loaded, std::move(paths));
    if (!loaded.ok) {
      End();
      Napi::Error error = Napi::Error::New(info.Env(), loaded.failure.message);
      error.Set("code", loaded.failure.code);
      throw error;
    }
    loadedState_ = std::move(scope.effects);
    engine_->Start();
    // Registered after the thread-safe function so it runs before Node closes that function.
    NAPI_THROW_IF_FAILED_VOID(env_, napi_add_env_cleanup_hook(env_, CleanupHook, this));
    hookRegistered_ = true;
  }

  ~Handle() override {
    if (hookRegistered_) napi_remove_env_cleanup_hook(env_, CleanupHook, this);
    End();
  }

 private:
  // Environment teardown. The wrapper is made strong first: collected now, it would queue its
  // finalizer, and Node 20's immediate that runs queued finalizers can free the module's
  // napi_env and then read it when it holds the last reference (docs/RELIABILITY.md). The
  // env's own teardown finalizes a strong wrapper instead. A failure leaves it weak, as before.
  static void CleanupHook(void* self) {
    auto* handle = static_cast<Handle*>(self);
    handle->hookRegistered_ = false;
    napi_reference_ref(handle->env_, static_cast<napi_ref>(*handle), nullptr);
    handle->End();
  }

  void End() {
    if (engine_) engine_->Shutdown();
    engine_.reset();
    deliver_.Abort();
    waiting_.Clear();
    dispatch_.Reset();
    numbers_.Reset();
  }

  // The Float64Array the dispatcher reads numbers from, grown when a chunk needs more.
  Napi::Float64Array NumbersFor(Napi::Env env, size_t slots) {
    if (numbers_.IsEmpty() || numbersCapacity_ < slots) {
      numbersCapacity_ = std::max<size_t>(slots, 4096);
      numbers_ = Napi::Persistent(Napi::Float64Array::New(env, numbersCapacity_));
    }
    return numbers_.Value();
  }

  Engine& Live(Napi::Env env) {
    if (!engine_) {
      Napi::Error error = Napi::Error::New(env, "this OTR instance is closed");
      error.Set("code", "ERR_OTR_CLOSED");
      throw error;
    }
    return *engine_;
  }

  // `strand`: the channel the job is a call of (its calls run one at a time, in order), or
  // 0 for a job that concerns the whole instance (it runs alone, between the calls made
  // before and after it).
  void Submit(Napi::Env env, uint32_t jobId, uint32_t strand, JobRun run, JobCost cost = JobCost::kCheap) {
    Submit(env, Job{jobId, strand, cost, std::move(run)});
  }

  void Submit(Napi::Env env, Job job) {
    Engine& engine = Live(env);
    if (job.id != 0 && pendingJobs_++ == 0) deliver_.SetKeepsLoopAlive(env, true);
    engine.Enqueue(std::move(job));
  }

  static uint32_t JobArg(const Napi::CallbackInfo& info) { return static_cast<uint32_t>(NumberArg(info, 0)); }

  // The accounts and contacts read by the constructor, once, in the dispatcher's layout:
  // [numbers, count, values].
  Napi::Value TakeLoadedState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Delivery loaded;
    loaded.batches.emplace_back(new Batch());
    loaded.batches.back()->effects = std::move(loadedState_);
    loadedState_.clear();
    const size_t slots = SlotsFor(loaded);
    Napi::Float64Array numbers = Napi::Float64Array::New(env, slots);
    std::vector<napi_value> values;
    Encode(env, loaded, numbers.Data(), values);
    Napi::Array list = Napi::Array::New(env, values.size());
    for (uint32_t i = 0; i < values.size(); ++i) list.Set(i, Napi::Value(env, values[i]));
    Napi::Array result = Napi::Array::New(env, 3);
    result.Set(0u, numbers);
    result.Set(1u, Napi::Number::New(env, static_cast<double>(slots)));
    result.Set(2u, list);
    return result;
  }

  Napi::Value EnsureAccount(const Napi::CallbackInfo& info) {
    std::string name = NameArg(info, 1), protocol = NameArg(info, 2);
    Submit(info.Env(), JobArg(info), kInstanceWide,
           [name, protocol](Engine& e, CallScope& s, Batch& b) { e.EnsureAccount(s, b, name, protocol); });
    return info.Env().Undefined();
  }

  // (job, contactId, account, protocol, username, fingerprint hex[, verified]): the trust calls.
  struct FingerprintCall {
    uint64_t contactId;
    std::string account, protocol, username, fingerprint;
    bool verified;
  };
  static FingerprintCall FingerprintArgs(const Napi::CallbackInfo& info) {
    return {ContactIdArg(info, 1), NameArg(info, 2),   NameArg(info, 3),
            NameArg(info, 4),      StringArg(info, 5), info[6].ToBoolean()};
  }

  Napi::Value AddContact(const Napi::CallbackInfo& info) {
    Submit(info.Env(), JobArg(info), kInstanceWide, [c = FingerprintArgs(info)](Engine& e, CallScope& s, Batch& b) {
      e.AddContact(s, b, c.contactId, c.account, c.protocol, c.username, c.fingerprint, c.verified);
    });
    return info.Env().Undefined();
  }

  Napi::Value SetTrust(const Napi::CallbackInfo& info) {
    Submit(info.Env(), JobArg(info), kInstanceWide, [c = FingerprintArgs(info)](Engine& e, CallScope& s, Batch& b) {
      e.SetTrust(s, b, c.contactId, c.account, c.protocol, c.username, c.fingerprint, c.verified);
    });
    return info.Env().Undefined();
  }

  Napi::Value ForgetFingerprint(const Napi::CallbackInfo& info) {
    Submit(info.Env(), JobArg(info), kInstanceWide, [c = FingerprintArgs(info)](Engine& e, CallScope& s, Batch& b) {
      e.ForgetFingerprint(s, b, c.contactId, c.account, c.protocol, c.username, c.fingerprint);
    });
    return info.Env().Undefined();
  }

  // forgetContact(job, contactId, account, protocol, username, dropUnverifiedFingerprints, endSessions)
  Napi::Value ForgetContact(const Napi::CallbackInfo& info) {
    const uint64_t contactId = ContactIdArg(info, 1);
    std::string account = NameArg(info, 2), protocol = NameArg(info, 3), username = NameArg(info, 4);
    const ForgetHow how{info[5].ToBoolean(), info[6].ToBoolean()};
    Submit(info.Env(), JobArg(info), kInstanceWide, [=](Engine& e, CallScope& s, Batch& b) {
      e.ForgetContact(s, b, contactId, account, protocol, username, how);
    });
    return info.Env().Undefined();
  }

  // renameContact(job, contactId, account, protocol, from, to)
  Napi::Value RenameContact(const Napi::CallbackInfo& info) {
    const uint64_t contactId = ContactIdArg(info, 1);
    std::string account = NameArg(info, 2), protocol = NameArg(info, 3), from = NameArg(info, 4), to = NameArg(info, 5);
    Submit(info.Env(), JobArg(info), kInstanceWide,
           [=](Engine& e, CallScope& s, Batch& b) { e.RenameContact(s, b, contactId, account, protocol, from, to); });
    return info.Env().Undefined();
  }

  // openChannel(job, channelId, contactId, account, protocol, username, policy, maxMessageSize,
  //             callbacks, lineBased, queryText: string | undefined, restartLostSessions)
  Napi::Value OpenChannel(const Napi::CallbackInfo& info) {
    ChannelRecord settings;
    settings.id = static_cast<uint32_t>(NumberArg(info, 1));
    settings.contactId = ContactIdArg(info, 2);
    settings.account = NameArg(info, 3);
    settings.protocol = NameArg(info, 4);
    settings.username = NameArg(info, 5);
    settings.policy = static_cast<OtrlPolicy>(NumberArg(info, 6));
    settings.maxMessageSize = static_cast<int>(NumberArg(info, 7));
    settings.callbacks = static_cast<uint32_t>(NumberArg(info, 8));
    settings.lineBased = info[9].ToBoolean();
    settings.customQuery = info[10].IsString();
    if (settings.customQuery) settings.queryText = StringArg(info, 10);
    settings.restartLostSessions = info[11].ToBoolean();
    Engine& engine = Live(info.Env());
    Submit(info.Env(), JobArg(info), engine.MissingInstags() ? kInstanceWide : settings.id,
           [settings](Engine& e, CallScope& s, Batch& b) { e.OpenChannel(s, b, settings); });
    return info.Env().Undefined();
  }

  // channelOp(job, channelId, op, ...args): the op's arguments as contract.json declares them.
  Napi::Value ChannelCall(const Napi::CallbackInfo& info) {
    const auto channelId = static_cast<uint32_t>(NumberArg(info, 1));
    const int64_t op = NumberArg(info, 2);
    ChannelOpCall call;
    OpArgReader args(info, 3);
    if (!DecodeChannelOp(static_cast<int>(op), args, call)) {
      throw Napi::RangeError::New(info.Env(), "unknown channel op " + std::to_string(op));
    }
    const uint32_t strand = IsInstanceWide(call) ? kInstanceWide : channelId;
    const auto* read = std::get_if<ReadArgs>(&call);
    const JobCost cost = read != nullptr ? ReadCost(read->message) : CostOf(call);
    const uint32_t dataMessageLength = read != nullptr ? DataMessageLength(read->message) : 0;
    Job job{JobArg(info), strand, cost, JobRun{}, dataMessageLength};
    job.channel = channelId;
    job.channelCall = std::move(call);
    Submit(info.Env(), std::move(job));
    return info.Env().Undefined();
  }

  Napi::Value CloseEngine(const Napi::CallbackInfo& info) {
    const bool endSessions = info[1].ToBoolean();
    Submit(info.Env(), JobArg(info), kInstanceWide,
           [endSessions](Engine& e, CallScope& s, Batch& b) { e.Close(s, b, endSessions); });
    return info.Env().Undefined();
  }

  // The instance's figures (see EngineStats); the pool's are the module's poolStats().
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const EngineStats stats = Live(env).Stats();
    Napi::Object out = Napi::Object::New(env);
    ForEachStat(stats, [&](const char* name, uint64_t value) {
      out.Set(name, Napi::Number::New(env, static_cast<double>(value)));
    });
    return out;
  }

  // After close(): everything is freed now, and the wrap with it, so a closed instance leaves
  // no finalizer to be queued later (perhaps during teardown, see CleanupHook). JS never uses
  // this object again. Should the unwrap fail, the finalizer frees the Handle as before.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    End();
    Napi::Env env = info.Env();
    if (napi_remove_wrap(env, info.This(), nullptr) == napi_ok) delete this;
    return env.Undefined();
  }

  // JS thread, from the thread-safe function: a delivery's batches join those waiting
  // (delivery_queue.h), and are applied now unless a slice of applying already ended with some
  // left over (then the dispatcher's next resumeDeliveries() takes them, on a later turn of the
  // event loop). A delivery with a question is applied at once, after everything waiting: a
  // libotr call waits for the answer. env is null when Node is tearing the function down: then
  // only free it (the handle may be gone; a job waiting for an answer is released by Shutdown).
  static void Deliver(napi_env rawEnv, napi_value rawDispatch, void* context, void* data) {
    std::unique_ptr<Delivery> delivery(static_cast<Delivery*>(data));
    if (rawEnv == nullptr) return;
    auto* self = static_cast<Handle*>(context);
    const bool asks = self->waiting_.Add(*delivery);
    if (self->engine_) self->engine_->Recycle(std::move(delivery));
    if (self->paused_ && !asks) return;
    self->Apply(Napi::Env(rawEnv), rawDispatch, asks);
  }

  // resumeDeliveries(): the dispatcher, on the turn of the event loop after it was told that
  // results wait (a call with count 0).
  Napi::Value ResumeDeliveries(const Napi::CallbackInfo& info) {
    if (!paused_ || dispatch_.IsEmpty()) return info.Env().Undefined();
    Apply(info.Env(), dispatch_.Value(), false);
    return info.Env().Undefined();
  }

  // How long results are applied in one turn of the event loop before the rest waits for the
  // next: timers and I/O run in between, whatever the load.
  static constexpr std::chrono::microseconds kDeliverySlice{500};

  // Applies waiting batches chunk by chunk, one call of the dispatcher each, until none is
  // left or (unless `all`) the slice has passed: then the dispatcher is called with count 0,
  // which asks for resumeDeliveries() on the next turn.
  // A chunk holds as many batches as the time left in the slice fits at the rate the last
  // chunk was applied: with callbacks that take a millisecond, one batch at a time.
  void Apply(Napi::Env env, napi_value dispatch, bool all) {
    using Clock = std::chrono::steady_clock;
    paused_ = false;
    const auto deadline = Clock::now() + kDeliverySlice;
    for (auto now = Clock::now(); !waiting_.Empty(); now = Clock::now()) {
      if (!all && now >= deadline) {
        paused_ = true;
        Napi::HandleScope scope(env);
        napi_value args[3] = {Napi::Number::New(env, instanceId_), NumbersFor(env, 0), Napi::Number::New(env, 0)};
        napi_value ignored = nullptr;
        // JS cannot run (a worker being terminated): nothing will ask for the rest, so the
        // next delivery applies it.
        if (napi_call_function(env, env.Undefined(), dispatch, 3, args, &ignored) != napi_ok) paused_ = false;
        return;
      }
      // The chunk's list keeps its room from one chunk to the next (a nested Apply, should a
      // callback cause one, starts with an empty list).
      Delivery chunk;
      chunk.batches.swap(spareChunk_);
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now).count();
      waiting_.TakeChunk(chunk, all ? DeliveryQueue::kChunkBatches : static_cast<size_t>(left / nsPerBatch_) + 1);
      const auto batches = static_cast<int64_t>(chunk.batches.size());
      const bool applied = ApplyChunk(env, dispatch, chunk);
      chunk.batches.clear();
      spareChunk_.swap(chunk.batches);
      if (!applied) return;
      const auto spent = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - now).count();
      nsPerBatch_ = std::max<int64_t>(1, spent / batches);
    }
  }

  // One call of the dispatcher for `chunk`; false when JS cannot run (then the rest waits
  // until the handle ends).
  bool ApplyChunk(Napi::Env env, napi_value dispatch, Delivery& chunk) {
    // However the call ends: a callback may have closed the instance meanwhile, so the engine
    // is looked for afterwards (without one, the chunk frees its batches here).
    struct Recycled {
      Handle& self;
      Delivery& chunk;
      ~Recycled() {
        if (self.engine_) self.engine_->Recycle(chunk.batches);
      }
    } recycled{*this, chunk};
    Napi::HandleScope scope(env);
    const std::shared_ptr<Query> query = chunk.batches.back()->query;
    for (const auto& batch : chunk.batches) {
      if (batch->done && batch->job != 0 && pendingJobs_ > 0 && --pendingJobs_ == 0) {
        deliver_.SetKeepsLoopAlive(env, false);
      }
    }
    try {
      const size_t slots = SlotsFor(chunk);
      // dispatch(instance, numbers, count, ...values)
      std::vector<napi_value>& args = args_;
      args.clear();
      args.push_back(Napi::Number::New(env, instanceId_));
      Napi::Float64Array numbers = NumbersFor(env, slots);
      args.push_back(numbers);
      args.push_back(Napi::Number::New(env, static_cast<double>(slots)));
      Encode(env, chunk, numbers.Data(), args);
      // Called through the C API: while a Node worker thread is being terminated the call
      // fails (JS cannot run), and node-addon-api would turn that into a fatal error. Then a
      // waiting job only needs its default answer; a pending exception is left for Node.
      napi_value rawAnswer = nullptr;
      if (napi_call_function(env, env.Undefined(), dispatch, args.size(), args.data(), &rawAnswer) != napi_ok) {
        if (query && engine_) engine_->AnswerDefault(query);
        return false;
      }
      if (!query || !engine_) return true;
      Napi::Value answer(env, rawAnswer);
      std::string text;
      if (answer.IsString() && ReadString(env, answer, text)) {
        engine_->Answer(query, true, std::move(text), 0);
      } else if (answer.IsNumber()) {
        engine_->Answer(query, false, std::string(), answer.As<Napi::Number>().Int64Value());
      } else {
        engine_->AnswerDefault(query);
      }
      return true;
    } catch (const Napi::Error& error) {
      // The dispatcher catches everything itself; should it fail anyway, the waiting job must
      // still get its answer.
      if (query && engine_) engine_->AnswerDefault(query);
      error.ThrowAsJavaScriptException();
      return false;
    }
  }

  Napi::Env env_;
  uint32_t instanceId_ = 0;
  SafeThreadsafeFunction deliver_;
  Napi::FunctionReference dispatch_;  // for resumeDeliveries()
  DeliveryQueue waiting_;
  std::vector<std::unique_ptr<Batch>> spareChunk_;  // the room of the last chunk's list (see Apply)
  bool paused_ = false;                             // a slice ended with results waiting: resumeDeliveries() comes next
  int64_t nsPerBatch_ = 10'000;                     // how long the last chunk took per batch to apply
  std::unique_ptr<Engine> engine_;
  uint32_t pendingJobs_ = 0;
  Napi::Reference<Napi::Float64Array> numbers_;
  std::vector<napi_value> args_;  // reused for every delivery
  size_t numbersCapacity_ = 0;
  std::vector<Effect> loadedState_;
  bool hookRegistered_ = false;
};

namespace {

// Every number lib/native.ts shares with this addon, by name (contract.h): lib/native.ts
// compares them with its own at load and refuses to run on a mismatch (a stale build).
Napi::Object SharedNumbers(Napi::Env env) {
  Napi::Object numbers = Napi::Object::New(env);
  ForEachSharedNumber([&](const char* name, double value) { numbers.Set(name, Napi::Number::New(env, value)); });
  return numbers;
}

// setThreads(n): the process-wide pool's size (every OTR instance shares it).
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  const int64_t threads = NumberArg(info, 0);
  if (threads < 1 || threads > 1024) {
    Napi::Error error = Napi::RangeError::New(info.Env(), "threads must be an integer from 1 to 1024");
    error.Set("code", "ERR_OTR_INVALID_ARGUMENT");
    throw error;
  }
  Pool::Get().SetThreads(static_cast<size_t>(threads));
  return info.Env().Undefined();
}

// poolStats(): { threads, queued, busyNs: number[], tasks: number[] }
Napi::Value PoolStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Pool& pool = Pool::Get();
  const std::vector<ThreadStats> threads = pool.Stats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("threads", Napi::Number::New(env, static_cast<double>(pool.Threads())));
  out.Set("queued", Napi::Number::New(env, static_cast<double>(pool.Queued())));
  Napi::Array busy = Napi::Array::New(env, threads.size());
  Napi::Array tasks = Napi::Array::New(env, threads.size());
  for (uint32_t i = 0; i < threads.size(); ++i) {
    busy.Set(i, Napi::Number::New(env, static_cast<double>(threads[i].busyNs)));
    tasks.Set(i, Napi::Number::New(env, static_cast<double>(threads[i].tasks)));
  }
  out.Set("busyNs", busy);
  out.Set("tasks", tasks);
  return out;
}

// libotr's values, straight from its headers: test/constants.test.mjs compares them with
// lib/constants.ts name by name: every flat name exported there, plus the length of the extra
// symmetric key.
Napi::Object Constants(Napi::Env env) {
  Napi::Object constants = Napi::Object::New(env);
#define C(name) \
  { #name, OTRL_##name }
  const std::pair<const char*, int> values[] = {
      C(POLICY_NEVER),
      C(POLICY_ALLOW_V1),
      C(POLICY_ALLOW_V2),
      C(POLICY_ALLOW_V3),
      C(POLICY_REQUIRE_ENCRYPTION),
      C(POLICY_SEND_WHITESPACE_TAG),
      C(POLICY_WHITESPACE_START_AKE),
      C(POLICY_ERROR_START_AKE),
      C(POLICY_MANUAL),
      C(POLICY_OPPORTUNISTIC),
      C(POLICY_ALWAYS),
      C(POLICY_DEFAULT),
      C(ERRCODE_NONE),
      C(ERRCODE_ENCRYPTION_ERROR),
      C(ERRCODE_MSG_NOT_IN_PRIVATE),
      C(ERRCODE_MSG_UNREADABLE),
      C(ERRCODE_MSG_MALFORMED),
      C(SMPEVENT_NONE),
      C(SMPEVENT_ERROR),
      C(SMPEVENT_ABORT),
      C(SMPEVENT_CHEATED),
      C(SMPEVENT_ASK_FOR_ANSWER),
      C(SMPEVENT_ASK_FOR_SECRET),
      C(SMPEVENT_IN_PROGRESS),
      C(SMPEVENT_SUCCESS),
      C(SMPEVENT_FAILURE),
      C(MSGEVENT_NONE),
      C(MSGEVENT_ENCRYPTION_REQUIRED),
      C(MSGEVENT_ENCRYPTION_ERROR),
      C(MSGEVENT_CONNECTION_ENDED),
      C(MSGEVENT_SETUP_ERROR),
      C(MSGEVENT_MSG_REFLECTED),
      C(MSGEVENT_MSG_RESENT),
      C(MSGEVENT_RCVDMSG_NOT_IN_PRIVATE),
      C(MSGEVENT_RCVDMSG_UNREADABLE),
      C(MSGEVENT_RCVDMSG_MALFORMED),
      C(MSGEVENT_LOG_HEARTBEAT_RCVD),
      C(MSGEVENT_LOG_HEARTBEAT_SENT),
      C(MSGEVENT_RCVDMSG_GENERAL_ERR),
      C(MSGEVENT_RCVDMSG_UNENCRYPTED),
      C(MSGEVENT_RCVDMSG_UNRECOGNIZED),
      C(MSGEVENT_RCVDMSG_FOR_OTHER_INSTANCE),
      C(INSTAG_BEST),
      C(INSTAG_RECENT),
      C(INSTAG_RECENT_RECEIVED),
      C(INSTAG_RECENT_SENT),
      C(EXTRAKEY_BYTES),
  };
#undef C
  for (const auto& value : values) constants.Set(value.first, Napi::Number::New(env, value.second));
  return constants;
}

}  // namespace

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("Handle", Handle::Define(env));
  exports.Set("constants", Constants(env));
  ExportFileLock(env, exports);
  ExportSweeps(env, exports);
  exports.Set("libotrVersion", Napi::String::New(env, otrl_version()));
  exports.Set("headersVersion", Napi::String::New(env, OTRL_VERSION));
  exports.Set("sharedNumbers", SharedNumbers(env));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("threads", Napi::Function::New(
                             env,
                             [](const Napi::CallbackInfo& info) {
                               return Napi::Number::New(info.Env(), static_cast<double>(Pool::Get().Threads()));
                             },
                             "threads"));
  exports.Set("poolStats", Napi::Function::New(env, PoolStats, "poolStats"));
  exports.Set("maxNameBytes", Napi::Number::New(env, static_cast<double>(kMaxNameBytes)));
  const std::string& initFailure = InitialiseLibraries();
  exports.Set("initError", initFailure.empty() ? env.Undefined() : Napi::String::New(env, initFailure));
  return exports;
}

}  // namespace otr

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return otr::InitModule(env, exports); }

NODE_API_MODULE(protocol_otr, InitAddon)
