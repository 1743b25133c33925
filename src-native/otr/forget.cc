// Forgetting a contact: its channel record and every libotr context it has, so memory does
// not grow with every name a bridge ever saw. libotr keeps a contact's fingerprints on its
// master context, so a master that still has fingerprints to keep stays, its sessions gone;
// one with none left is freed entirely.
//
// Once private, never silently in clear: a contact that had an encrypted session in this
// process, is in one (or in libotr's FINISHED state), is re-keying, or has writes waiting for
// one, leaves a tombstone — the master it keeps is put in FINISHED, or the name is remembered
// (ContactIndex) and the next channel opened to it starts in FINISHED (channel.cc). Writes
// there are refused with CONNECTION_ENDED until the application calls init() or finish().
#include <cstdlib>
#include <vector>

#include "engine/engine.h"

namespace otr {

namespace {

bool Unverified(const Fingerprint* fp) { return fp->trust == nullptr || fp->trust[0] == '\0'; }

}  // namespace

bool Engine::LeavesTombstone(ConnContext* master, const ChannelRecord* channel) const {
  if (channel != nullptr && (channel->wasPrivate || channel->refreshing || !channel->held.empty())) return true;
  for (ConnContext* c = master; c != nullptr && c->m_context == master; c = c->next) {
    if (c->msgstate != OTRL_MSGSTATE_PLAINTEXT) return true;
  }
  return false;
}

bool Engine::HasVerifiedFingerprint(ConnContext* master) {
  if (master == nullptr) return false;
  for (const Fingerprint* fp = master->fingerprint_root.next; fp != nullptr; fp = fp->next) {
    if (!Unverified(fp)) return true;
  }
  return false;
}

void Engine::ForgetContact(CallScope& scope, Batch& result, uint64_t contactId, std::string account,
                           std::string protocol, std::string username, ForgetHow how) {
  ContactRef ref;
  // Another contact holds the name now (this one was displaced by a rename): nothing to do.
  if (!Resolve(contactId, account, protocol, username, ref)) return;
  ForgetRecord(scope, result, ref, how);
  if (contactId != 0) index_.Unbind(contactId);
}

void Engine::ForgetRecord(CallScope& scope, Batch& result, const ContactRef& ref, ForgetHow how) {
  ChannelRecord* channel = index_.ChannelByName(ref.key);
  ConnContext* master = FindMaster(ref.account, ref.protocol, ref.username);
  const uint64_t boundId = index_.IdOf(ref.key);
  if (how.endSessions && channel != nullptr && master != nullptr) {
    bool encrypted = false;
    for (ConnContext* c = master; c != nullptr && c->m_context == master; c = c->next) {
      encrypted = encrypted || c->msgstate == OTRL_MSGSTATE_ENCRYPTED;
    }
    if (encrypted) {
      // The contact is told, as finish() tells it (libotr's disconnect message via onWrite).
      WithContact(scope, ref.account, ref.protocol, ref.username, [&] {
        FinishChannel(scope, *channel);
        AfterLibotrCall(scope, *channel);
      });
      master = FindMaster(ref.account, ref.protocol, ref.username);
    }
  }
  const bool tombstone = LeavesTombstone(master, channel);
  if (channel != nullptr) {
    // Writes still waiting for an AKE will not go out: say so for each, as finish() does.
    for (std::string& text : channel->held) {
      scope.effects.push_back(
          MakeEffect(channel->id, MsgEventPayload{OTRL_MSGEVENT_CONNECTION_ENDED, true, std::move(text)}));
    }
    channel->held.clear();
    sessions_.fetch_sub(channel->liveSessions, std::memory_order_relaxed);
    ForgetLastCosts(channel->id);
    index_.EraseChannel(channel);  // frees the record: nothing may point at it below
    channel = nullptr;
  }
  if (master == nullptr) {
    if (tombstone) index_.AddTombstone(ref.key);
    return;
  }

  std::vector<ConnContext*> instances;
  for (ConnContext* c = master->next; c != nullptr && c->m_context == master; c = c->next) instances.push_back(c);
  for (ConnContext* instance : instances) {
    instance->app_data = nullptr;
    ForgetInstance(nullptr, nullptr, instance);
  }
  master->app_data = nullptr;
  master->recent_child = master->recent_rcvd_child = master->recent_sent_child = nullptr;
  ConnContextPriv* leftover = master->context_priv;
  // Frees the keys and AKE/SMP state the master holds; FINISHED is the tombstone of a master
  // that stays.
  if (tombstone) {
    otrl_context_force_finished(master);
  } else {
    otrl_context_force_plaintext(master);
  }
  master->active_fingerprint = nullptr;

  bool dropped = false;
  if (how.dropUnverified) {
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
    trust_->ForgetContact(ContactName{ref.account, ref.protocol, ref.username});
    index_.EraseMaster(ref.key);
    index_.UnbindKey(ref.key);
    // force_finished leaves no state a tombstone entry would not say as well.
    master->msgstate = OTRL_MSGSTATE_PLAINTEXT;
    if (otrl_context_forget(master) == 0) std::free(leftover);
    if (tombstone) index_.AddTombstone(ref.key);
    if (boundId != 0) EmitContactGone(scope, ref, boundId);
  } else {
    // What stays (its fingerprints, FINISHED or not) is what JS shows under the name, bound
    // to no contact object: the next one made for the name finds it (see lib/otr.ts).
    EmitContactState(scope, master, nullptr, boundId);
    index_.UnbindKey(ref.key);
    EmitContactState(scope, master, nullptr, 0);
  }
  if (dropped) PersistFingerprints(result);
}

}  // namespace otr
