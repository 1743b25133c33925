// Persistence of what we know about contacts' keys: the fingerprints libotr has seen and the
// trust given to each. The engine reports row-level changes (a fingerprint seen, its trust
// changed, a fingerprint or a whole contact forgotten, a contact renamed) as they happen, on
// whichever thread ran the change; the store keeps the rows and makes them durable on
// Commit(). Writing never walks libotr's context lists, so it needs no user state: the same
// rows serve however many user states an OTR instance has.
//
// TrustStore is the interface a database-backed store implements; FileTrustStore
// (file_trust_store.h) keeps the fingerprints file.
#pragma once

#include <string>
#include <vector>

namespace otr {

struct ContactName {
  std::string account, protocol, username;
  bool operator<(const ContactName& other) const {
    if (account != other.account) return account < other.account;
    if (protocol != other.protocol) return protocol < other.protocol;
    return username < other.username;
  }
  bool operator==(const ContactName& other) const {
    return account == other.account && protocol == other.protocol && username == other.username;
  }
};

// One fingerprint of a contact: 40 lower-case hex digits and its trust ("" = not verified;
// libotr's own values are "verified" and "smp", a file may hold any other word).
struct FingerprintRow {
  std::string hex;
  std::string trust;
};

class TrustStore {
 public:
  virtual ~TrustStore() = default;

  // --- any thread; each call is atomic with respect to the others ---
  // A fingerprint libotr has seen for the contact; a known one keeps its trust.
  virtual void Seen(const ContactName& contact, const std::string& hex) = 0;
  virtual void SetTrust(const ContactName& contact, const std::string& hex, const std::string& trust) = 0;
  virtual void Forget(const ContactName& contact, const std::string& hex) = 0;
  virtual void ForgetContact(const ContactName& contact) = 0;
  // Every row of `from` moves to `to` (which the caller made sure has none).
  virtual void Rename(const ContactName& from, const ContactName& to) = 0;
  // The contact's rows, in the order they were first seen.
  virtual std::vector<FingerprintRow> Rows(const ContactName& contact) const = 0;
  // True while changes have not been made durable.
  virtual bool Dirty() const = 0;
  // Makes every change reported so far durable. Empty on success, else why it failed (the
  // changes stay pending, and a later Commit tries again).
  virtual std::string Commit() = 0;
};

}  // namespace otr
