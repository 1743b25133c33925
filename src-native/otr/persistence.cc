// The engine's side of the trust store: what libotr holds for a contact, reported as
// row-level changes, and when the rows are made durable.
#include <algorithm>

#include "engine/engine.h"

namespace otr {

void Engine::SyncTrustRows(ConnContext* master) {
  const ContactName contact{master->accountname, master->protocol, master->username};
  std::vector<FingerprintRow> stored = trust_->Rows(contact);
  std::vector<std::string> present;
  for (const Fingerprint* fp = master->fingerprint_root.next; fp != nullptr; fp = fp->next) {
    const std::string hex = FingerprintHex(fp->fingerprint);
    const std::string trust = fp->trust != nullptr ? fp->trust : "";
    present.push_back(hex);
    auto found = std::find_if(stored.begin(), stored.end(), [&](const FingerprintRow& row) { return row.hex == hex; });
    if (found == stored.end()) {
      trust_->Seen(contact, hex);
      if (!trust.empty()) trust_->SetTrust(contact, hex, trust);
    } else if (found->trust != trust) {
      trust_->SetTrust(contact, hex, trust);
    }
  }
  for (const FingerprintRow& row : stored) {
    if (std::find(present.begin(), present.end(), row.hex) == present.end()) trust_->Forget(contact, row.hex);
  }
}

void Engine::PersistFingerprints(Batch& result) {
  std::string why;
  if (!WriteFingerprints(&why)) {
    result.ok = false;
    result.failure = MakeFailure("ERR_OTR_FILE_WRITE", why);
  }
}

bool Engine::WriteFingerprints(std::string* why) {
  *why = trust_->Commit();
  return why->empty();
}

}  // namespace otr
