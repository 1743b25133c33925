// The engine's instance-wide parts: running a job the scheduler started, the questions jobs
// ask JS, stats, errors no call waits for, close(), freeing libotr's state, and the channel
// index. When jobs run is the scheduler's (scheduler.cc).
#include <cstdlib>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "util/wipe.h"

namespace otr {

thread_local OtrlUserState tViewing = nullptr;

Engine::Engine(Poster post) : outbox_(std::move(post)) { us_ = otrl_userstate_create(); }

Engine::~Engine() { Shutdown(); }

void Engine::Start() { scheduler_.Start(); }

void Engine::Enqueue(Job job) { scheduler_.Enqueue(std::move(job)); }

void Engine::ForgetLastCosts(uint32_t channelId) { scheduler_.ForgetLastCosts(channelId); }

void Engine::Shutdown() {
  if (shutDown_) return;
  shutDown_ = true;
  scheduler_.Stop();
  // No job runs or will run: nothing can post to the outbox or ask the courier any more.
  Pool::Get().ForgetFlushes(&outbox_);
  outbox_.Clear();
  StopKeygens();
  FreeUserstate();
}

void Engine::Answer(const std::shared_ptr<Query>& query, bool hasString, std::string text, int64_t number) {
  scheduler_.Answer(query, hasString, std::move(text), number);
}

void Engine::AnswerDefault(const std::shared_ptr<Query>& query) { scheduler_.AnswerDefault(query); }

bool Engine::RunJob(Job& job, Scheduler::JobClock& clock) {
  const bool instanceWide = job.strand == kInstanceWide;
  OtrlUserState us = instanceWide ? us_ : lenders_.Borrow();
  clock.Start();
  const bool smpUnderway = Execute(job, us);
  clock.Stop();
  spent_.Collect();
  const bool idle = scheduler_.NothingToStart();
  // Still counted as running: no instance-wide job (close()) can start, and Shutdown waits.
  if (idle) FlushFingerprintsWhenIdle();
  // A job that ran this long (a key rotation, an AKE or SMP step) has its result sent at once.
  if (idle || clock.Wall() >= Outbox::kLongestHold) outbox_.Send();
  // Returned while still counted as running: Shutdown frees the states once nothing runs.
  if (!instanceWide) lenders_.Return(us);
  return smpUnderway;
}

void Engine::Recycle(std::vector<std::unique_ptr<Batch>>& batches) {
  for (auto& batch : batches) {
    batch->DropSpentCall();
    batch->WipeSecrets();
  }
  spent_.Add(batches);
}

bool Engine::Execute(Job& job, OtrlUserState us) {
  CallScope scope;
  scope.engine = this;
  scope.us = us;
  scope.job = job.id;
  Batch* batch = SpentBatches::Spare();
  batch->job = job.id;
  scope.effects.swap(batch->effects);  // empty, with the room a spare batch's list had
  if (closed_) {
    batch->ok = false;
    batch->failure = MakeFailure("ERR_OTR_CLOSED", "this OTR instance is closed");
  } else if (job.run) {
    job.run(*this, scope, *batch);
  } else {
    RunChannelOp(scope, *batch, job.channel, job.channelCall);
  }
  batch->spentCall = std::move(job.run);
  batch->spentChannelCall = std::move(job.channelCall);
  batch->effects.swap(scope.effects);
  batch->done = !scope.deferred;
  // Counted as finished before its result can reach JS: stats() read once a promise settled
  // never shows that call as running.
  scheduler_.CountFinished();
  jobsDone_.fetch_add(1, std::memory_order_relaxed);
  if (!batch->done && batch->effects.empty()) {
    delete batch;
    return scope.smpUnderway;
  }
  if (!batch->done) batch->job = 0;  // effects of a deferred job belong to no waiting call yet
  outbox_.Add(batch);
  return scope.smpUnderway;
}

bool Engine::Ask(CallScope& scope, const std::shared_ptr<Query>& query) {
  auto* batch = new Batch();
  batch->job = scope.job;
  batch->done = false;
  batch->effects = std::move(scope.effects);
  scope.effects.clear();
  batch->query = query;
  if (scheduler_.Stopping()) {
    delete batch;
    return false;
  }
  if (!outbox_.SendWith(batch)) return false;  // the outbox goes with the question, in order
  return scheduler_.AwaitAnswer(query);
}

EngineStats Engine::Stats() {
  EngineStats stats;
  const Scheduler::Counts counts = scheduler_.Count();
  stats.queued = counts.queued;
  stats.running = counts.running;
  stats.strands = counts.strands;
  stats.contacts = index_.ContactCount();
  stats.tombstones = index_.TombstoneCount();
  stats.channels = index_.ChannelCount();
  stats.userStates = (us_ != nullptr ? 1 : 0) + lenders_.Count();
  stats.sessions = sessions_.load(std::memory_order_relaxed);
  stats.jobs = jobsDone_.load(std::memory_order_relaxed);
  stats.deliveries = outbox_.Deliveries();
  stats.batches = outbox_.Batches();
  stats.effects = outbox_.Effects();
  return stats;
}

void Engine::ReportError(CallScope& scope, const Failure& failure) {
  scope.effects.push_back(
      MakeEffect(scope.channel != nullptr ? scope.channel->id : 0, ErrorPayload{failure.code, failure.message}));
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
  outbox_.Add(batch);
}

void Engine::Close(CallScope& scope, Batch& result, bool endSessions) {
  // close({ endSessions: true }): every contact in an encrypted session is told we are
  // leaving (libotr's disconnect message, through onWrite) before anything is freed.
  if (endSessions) {
    for (ChannelRecord* record : index_.Channels()) {
      ChannelRecord& channel = *record;
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
  // Writes that never went out are reported, as finish() and forget() report them.
  for (ChannelRecord* channel : index_.Channels()) {
    for (std::string& text : channel->held) {
      scope.effects.push_back(
          MakeEffect(channel->id, MsgEventPayload{OTRL_MSGEVENT_CONNECTION_ENDED, true, std::move(text)}));
    }
    channel->held.clear();
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
  lenders_.FreeAll();
  if (us_ == nullptr) return;
  // libotr 4.1 never frees a context's private part (context.c: otrl_context_forget leaves
  // context_priv), ~728 bytes per context: the ones still here are freed after the user state,
  // as ForgetInstance does for one context (libotr.h pins the 4.1 series).
  std::vector<ConnContextPriv*> leftovers;
  for (ConnContext* c = us_->context_root; c != nullptr; c = c->next) leftovers.push_back(c->context_priv);
  otrl_userstate_free(us_);
  us_ = nullptr;
  for (ConnContextPriv* priv : leftovers) std::free(priv);
}

ChannelRecord* Engine::ChannelFor(const char* account, const char* protocol, const char* username) {
  if (account == nullptr || protocol == nullptr || username == nullptr) return nullptr;
  return index_.ChannelByName(LookupKey(account, protocol, username));
}

ChannelRecord* Engine::ChannelById(uint32_t id) { return index_.Channel(id); }

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
