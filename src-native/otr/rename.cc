// Nick changes. libotr keys a contact's contexts by username, so a nick change would start
// over with no session and no trust. Renaming the contexts in place keeps both: the sessions
// (master and instances), their keys and the fingerprints move to the new name, and the
// fingerprints file is rewritten (atomically) under it. libotr 4.x allocates `username` with
// strdup and frees it with free() (context.c), which is what makes replacing it safe.
//
// The new name may be held already. By a contact with something to lose — a verified
// fingerprint, an encrypted or finished session, one being re-keyed, writes waiting, an
// encrypted session earlier in this process, or the tombstone such a contact left — the
// rename is refused: merging two sets of sessions and trust would let one inherit or spoil
// the other's. By anyone else (a squatter: someone who spoke once under the name) the name is
// taken from it, as the network has: that contact and its unverified fingerprints are
// forgotten, so a stranger who used a nick once cannot block a later rename to it.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/engine.h"

namespace otr {

static_assert(OTRL_VERSION_MAJOR == 4, "contact renaming replaces ConnContext::username as libotr 4 allocates it");

void Engine::RenameContact(CallScope& scope, Batch& result, uint64_t contactId, std::string account,
                           std::string protocol, std::string from, std::string to) {
  ContactRef ref;
  if (!ResolveOrFail(contactId, account, protocol, from, ref, result)) return;
  result.value.type = ResultValue::Type::Bool;
  result.value.flag = false;  // whether a squatter was displaced
  const ContactRef target{ChannelKey(ref.account, ref.protocol, to), ref.account, ref.protocol, to};
  if (target.key == ref.key) return;
  ConnContext* holder = FindMaster(ref.account, ref.protocol, to);
  ChannelRecord* holderChannel = index_.ChannelByName(target.key);
  const bool tombstone = index_.HasTombstone(target.key);
  if (holder != nullptr || holderChannel != nullptr || tombstone) {
    if (tombstone || LeavesTombstone(holder, holderChannel) || HasVerifiedFingerprint(holder)) {
      result.ok = false;
      result.failure = MakeFailure("ERR_OTR_CONTACT_EXISTS",
                                   to + " is already a contact of " + ref.account +
                                       " with a verified fingerprint or a private session: forget it first (its trust "
                                       "stays with that name), or rename it away");
      return;
    }
    ForgetRecord(scope, result, target, ForgetHow{true, false});
    if (!result.ok) return;
    result.value.flag = true;
  }
  ConnContext* master = FindMaster(ref.account, ref.protocol, ref.username);
  if (master != nullptr) {
    // Allocate first, then swap, so a failure leaves every context under one name.
    std::vector<ConnContext*> contexts{master};
    for (ConnContext* c = master->next; c != nullptr && c->m_context == master; c = c->next) contexts.push_back(c);
    std::vector<char*> names;
    for (size_t i = 0; i < contexts.size(); ++i) {
      char* name = strdup(to.c_str());
      if (name == nullptr) {
        for (char* n : names) std::free(n);
        result.ok = false;
        result.failure = MakeFailure("ERR_OTR_INTERNAL", "out of memory renaming " + ref.username);
        return;
      }
      names.push_back(name);
    }
    for (size_t i = 0; i < contexts.size(); ++i) {
      std::free(contexts[i]->username);
      contexts[i]->username = names[i];
    }
  }
  ChannelRecord* channel = index_.Rename(ref.key, target.key, to);
  if (master == nullptr) return;
  trust_->Rename(ContactName{ref.account, ref.protocol, ref.username}, ContactName{ref.account, ref.protocol, to});
  if (master->fingerprint_root.next != nullptr) PersistFingerprints(result);
  EmitContactState(scope, master, channel);
}

}  // namespace otr
