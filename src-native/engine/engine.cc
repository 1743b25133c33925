// The engine's instance-wide parts: errors no call waits for, close(), freeing libotr's
// state, and the channel index. Scheduling is in scheduler.cc.
#include <cstdlib>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "util/wipe.h"

namespace otr {

void Engine::ReportError(CallScope& scope, const Failure& failure) {
  scope.effects.push_back(MakeEffect(EffectKind::Error, scope.channel != nullptr ? scope.channel->id : 0,
                                     ErrorPayload{failure.code, failure.message}));
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
      scope.effects.push_back(MakeEffect(EffectKind::MsgEvent, channel->id,
                                         MessageEventPayload{OTRL_MSGEVENT_CONNECTION_ENDED, true, std::move(text)}));
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
  return index_.ChannelByName(ChannelKey(account, protocol, username));
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
