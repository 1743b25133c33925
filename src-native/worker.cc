// The worker queue: one thread per Engine runs the jobs JS queued, in order.
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <utility>

#include "engine.h"
#include "wipe.h"

namespace otr {

namespace {
// Enough to amortise the hop to the JS thread, small enough that handling one delivery
// (its callbacks, and the strings they carry) stays around a millisecond. Counted in
// effects (callbacks), not jobs: one fragmented write alone makes dozens of onWrite calls.
constexpr size_t kEffectsPerDelivery = 128;
constexpr size_t kTextBytesPerDelivery = 256 * 1024;
// A job that ran this long has its result sent at once (behind expensive jobs, key rotations
// and AKE steps, the other party's worker may be waiting for it), and a batch posted to an
// outbox whose oldest batch waited this long sends the outbox. A result can still wait
// behind the job after it for as long as that job runs: nothing sends during a job.
constexpr std::chrono::microseconds kLongestHold{200};
}  // namespace

Engine::Engine(Poster post) : post_(std::move(post)) { us_ = otrl_userstate_create(); }

Engine::~Engine() { Shutdown(); }

// On a machine with fewer cores than busy threads, the JS thread competes with the workers
// for CPU; a worker holding a core for a scheduler time slice (milliseconds) stalls the event
// loop. Workers yield to it: a lower priority and the batch policy (no wakeup preemption).
// Only idle CPU is given up, so throughput stays; failure here changes nothing else.
static void YieldToTheEventLoop() {
  sched_param param{};
  pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 5);
}

void Engine::Start() {
  worker_ = std::thread([this] {
    // Named for operators (top -H, /proc/PID/task/*/comm) and for the tests that check
    // libotr's work runs on this thread.
    pthread_setname_np(pthread_self(), "protocol-otr");
    YieldToTheEventLoop();
    Run();
  });
}

void Engine::Enqueue(Job job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void Engine::Shutdown() {
  if (shutDown_) return;
  shutDown_ = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
  // The worker is gone: this thread may now touch libotr's state.
  StopKeygens();
  FreeUserstate();
}

void Engine::Answer(const std::shared_ptr<Query>& query, bool hasString, std::string text, int64_t number) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    query->hasString = hasString;
    query->answer = std::move(text);
    query->number = number;
    query->answered = true;
  }
  wake_.notify_all();
}

void Engine::AnswerDefault(const std::shared_ptr<Query>& query) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    query->answered = true;
  }
  wake_.notify_all();
}

void Engine::Run() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (queue_.empty()) {
        lock.unlock();
        FlushFingerprintsWhenIdle();
        Flush();
        lock.lock();
      }
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    const auto started = std::chrono::steady_clock::now();
    Execute(job);
    // An expensive job's result goes out at once: the other party may be waiting for it.
    if (std::chrono::steady_clock::now() - started >= kLongestHold) Flush();
  }
}

void Engine::Execute(Job& job) {
  CallScope scope;
  scope.engine = this;
  scope.job = job.id;
  auto* batch = new Batch();
  batch->job = job.id;
  if (closed_) {
    batch->ok = false;
    batch->failure = MakeFailure("ERR_OTR_CLOSED", "this OTR instance is closed");
  } else {
    job.run(*this, scope, *batch);
  }
  batch->effects = std::move(scope.effects);
  batch->done = !scope.deferred;
  if (!batch->done && batch->effects.empty()) {
    delete batch;
    return;
  }
  if (!batch->done) batch->job = 0;  // effects of a deferred job belong to no waiting call yet
  Post(batch);
}


void Engine::Post(Batch* batch) {
  const auto now = std::chrono::steady_clock::now();
  if (outbox_.empty()) outboxSince_ = now;
  for (const Effect& effect : batch->effects) outboxBytes_ += effect.text.size();
  outboxEffects_ += batch->effects.size() + 1;  // the settling of the call counts too
  outbox_.emplace_back(batch);
  if (outboxEffects_ >= kEffectsPerDelivery || outboxBytes_ >= kTextBytesPerDelivery ||
      now - outboxSince_ >= kLongestHold) {
    Flush();
  }
}

void Engine::Flush() {
  outboxBytes_ = 0;
  outboxEffects_ = 0;
  if (outbox_.empty()) return;
  auto* delivery = new Delivery();
  delivery->batches.swap(outbox_);
  if (!post_(delivery)) delete delivery;
}

bool Engine::Ask(CallScope& scope, const std::shared_ptr<Query>& query) {
  auto* batch = new Batch();
  batch->job = scope.job;
  batch->done = false;
  batch->effects = std::move(scope.effects);
  scope.effects.clear();
  batch->query = query;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      delete batch;
      return false;
    }
  }
  outbox_.emplace_back(batch);
  outboxBytes_ = 0;
  outboxEffects_ = 0;
  auto* delivery = new Delivery();
  delivery->batches.swap(outbox_);
  if (!post_(delivery)) {
    delete delivery;
    return false;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait(lock, [&] { return stopping_ || query->answered; });
  return query->answered;
}

void Engine::ReportError(CallScope& scope, const Failure& failure) {
  Effect effect{EffectKind::Error};
  effect.channel = scope.channel != nullptr ? scope.channel->id : 0;
  effect.hasText = true;
  effect.text = failure.code;
  effect.bytes = failure.message;
  scope.effects.push_back(std::move(effect));
}

void Engine::FlushFingerprintsWhenIdle() {
  if (closed_ || us_ == nullptr || !trust_->Dirty()) return;
  std::string why;
  if (WriteFingerprints(&why)) return;
  CallScope scope;
  scope.engine = this;
  ReportError(scope, MakeFailure("ERR_OTR_FILE_WRITE", why));
  auto* batch = new Batch();
  batch->done = false;
  batch->effects = std::move(scope.effects);
  Post(batch);
}

void Engine::Close(CallScope& scope, Batch& result, bool endSessions) {
  // close({ endSessions: true }): every contact in an encrypted session is told we are
  // leaving (libotr's disconnect message, through onWrite) before anything is freed.
  if (endSessions) {
    for (auto& entry : channels_) {
      ChannelRecord& channel = *entry.second;
      ConnContext* master = MasterFor(channel);
      bool encrypted = false;
      for (ConnContext* c = master; c != nullptr && (c == master || c->m_context == master); c = c->next) {
        encrypted = encrypted || c->msgstate == OTRL_MSGSTATE_ENCRYPTED;
      }
      if (!encrypted) continue;
      WithContact(scope, channel.account, channel.protocol, channel.username, [&] {
        FinishChannel(scope, channel);
        AfterLibotrCall(scope, channel);
      });
    }
    scope.channel = nullptr;
  }
  // close() finishes pending work: a key being generated is waited for and stored.
  std::vector<std::string> generating;
  for (const auto& entry : keygens_) generating.push_back(entry.first);
  for (const auto& key : generating) FinishKeygen(scope, key);
  for (auto& entry : channels_) {
    for (std::string& text : entry.second->held) Wipe(text);  // plaintext that never went out
    entry.second->held.clear();
  }
  std::string why;
  if (!WriteFingerprints(&why)) {
    result.ok = false;
    result.failure = MakeFailure("ERR_OTR_FILE_WRITE", why);
  }
  FreeUserstate();
  closed_ = true;
}

void Engine::FreeUserstate() {
  if (us_ == nullptr) return;
  otrl_userstate_free(us_);
  us_ = nullptr;
}

std::string ChannelKey(const std::string& account, const std::string& protocol, const std::string& username) {
  std::string key;
  key.reserve(account.size() + protocol.size() + username.size() + 2);
  key.append(account).push_back('\0');
  key.append(protocol).push_back('\0');
  key.append(username);
  return key;
}

ChannelRecord* Engine::ChannelFor(const char* account, const char* protocol, const char* username) {
  if (account == nullptr || protocol == nullptr || username == nullptr) return nullptr;
  const auto found = channelsByName_.find(ChannelKey(account, protocol, username));
  return found == channelsByName_.end() ? nullptr : found->second;
}

ChannelRecord* Engine::ChannelFor(ConnContext* context) {
  if (context == nullptr) return nullptr;
  if (context->app_data != nullptr) return static_cast<ChannelRecord*>(context->app_data);
  ChannelRecord* channel = ChannelFor(context->accountname, context->protocol, context->username);
  // Records live until the userstate is freed, and app_data_free stays null: libotr never
  // frees what we point it at.
  if (channel != nullptr) context->app_data = channel;
  return channel;
}

}  // namespace otr
