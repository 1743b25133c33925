// Persistence of what we know about contacts' keys: the fingerprints libotr has seen and the
// trust given to each. The engine reports row-level changes (a fingerprint seen, its trust
// changed, a fingerprint or a whole contact forgotten, a contact renamed) as they happen, on
// whichever thread ran the change; the store keeps the rows and makes them durable on
// Commit(). Writing never walks libotr's context lists, so it needs no user state and no
// worker: the same rows serve however many user states an OTR instance has.
//
// TrustStore is the interface a database-backed store implements; FileTrustStore keeps the
// Pidgin-format fingerprints file (username, account, protocol, fingerprint, trust; tabs),
// written atomically (temp file, fsync, rename, fsync of the directory).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
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

class FileTrustStore : public TrustStore {
 public:
  explicit FileTrustStore(std::string path) : path_(std::move(path)) {}

  // Rows read from a well-formed file at load time (see WellFormedFingerprints); not a change.
  void LoadRows(const std::string& wellFormedBytes);
  // Forces the next Commit to rewrite the file (lines were skipped at load).
  void MarkDirty();

  void Seen(const ContactName& contact, const std::string& hex) override;
  void SetTrust(const ContactName& contact, const std::string& hex, const std::string& trust) override;
  void Forget(const ContactName& contact, const std::string& hex) override;
  void ForgetContact(const ContactName& contact) override;
  void Rename(const ContactName& from, const ContactName& to) override;
  std::vector<FingerprintRow> Rows(const ContactName& contact) const override;
  bool Dirty() const override;
  std::string Commit() override;

  // The file's content for the rows as they are now.
  std::string Serialise() const;

 private:
  void Changed() { ++version_; }  // under mutex_
  std::string SerialiseLocked() const;

  const std::string path_;
  mutable std::mutex mutex_;  // rows_ and version_
  std::map<ContactName, std::vector<FingerprintRow>> rows_;
  uint64_t version_ = 0;     // bumped by every change
  uint64_t committed_ = 0;   // the version the file holds
  std::mutex writing_;       // one Commit at a time; rows stay available meanwhile
};

}  // namespace otr
