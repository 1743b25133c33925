// Forgetting a contact: its channel record and every libotr context it has, so memory does
// not grow with every name a bridge ever saw. libotr keeps a contact's fingerprints on its
// master context, so a master that still has fingerprints to keep stays (in plaintext, its
// sessions gone); one with none left is freed entirely.
#include <cstdlib>
#include <vector>

#include "engine.h"

namespace otr {

namespace {

bool Unverified(const Fingerprint* fp) { return fp->trust == nullptr || fp->trust[0] == '\0'; }

}  // namespace

void Engine::ForgetContact(CallScope& scope, Batch& result, std::string account, std::string protocol,
                           std::string username, bool dropUnverified) {
  const std::string key = ChannelKey(account, protocol, username);
  if (ChannelRecord* channel = ChannelFor(account.c_str(), protocol.c_str(), username.c_str())) {
    // Writes still waiting for an AKE will not go out: say so for each, as finish() does.
    for (std::string& text : channel->held) {
      scope.effects.push_back(MakeEffect(EffectKind::MsgEvent, channel->id,
                                         MessageEventPayload{OTRL_MSGEVENT_CONNECTION_ENDED, true, std::move(text)}));
    }
    sessions_.fetch_sub(channel->liveSessions, std::memory_order_relaxed);
    ForgetLastCosts(channel->id);
    index_.EraseChannel(channel);  // frees the record: nothing may point at it below
  }
  ConnContext* master = FindMaster(account, protocol, username);
  if (master == nullptr) return;

  std::vector<ConnContext*> instances;
  for (ConnContext* c = master->next; c != nullptr && c->m_context == master; c = c->next) instances.push_back(c);
  for (ConnContext* instance : instances) {
    instance->app_data = nullptr;
    ForgetInstance(nullptr, nullptr, instance);
  }
  master->app_data = nullptr;
  master->recent_child = master->recent_rcvd_child = master->recent_sent_child = nullptr;
  ConnContextPriv* leftover = master->context_priv;
  otrl_context_force_plaintext(master);  // frees the keys and AKE/SMP state the master holds
  master->active_fingerprint = nullptr;

  bool dropped = false;
  if (dropUnverified) {
    Fingerprint* fp = master->fingerprint_root.next;
    while (fp != nullptr) {
      Fingerprint* next = fp->next;
      if (Unverified(fp)) {
        otrl_context_forget_fingerprint(fp, 0);
        dropped = true;
      }
      fp = next;
    }
  }
  if (dropped) SyncTrustRows(master);
  if (master->fingerprint_root.next == nullptr) {
    trust_->ForgetContact(ContactName{account, protocol, username});
    index_.EraseMaster(key);
    if (otrl_context_forget(master) == 0) std::free(leftover);
  }
  if (dropped) PersistFingerprints(result);
  (void)scope;
}

}  // namespace otr
