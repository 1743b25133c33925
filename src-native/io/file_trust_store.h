// The trust store (trust_store.h) kept in the Pidgin-format fingerprints file (username,
// account, protocol, fingerprint, trust; tabs), written atomically (temp file, fsync, rename,
// fsync of the directory).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "io/trust_store.h"

namespace otr {

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
  uint64_t version_ = 0;    // bumped by every change
  uint64_t committed_ = 0;  // the version the file holds
  std::mutex writing_;      // one Commit at a time; rows stay available meanwhile
};

}  // namespace otr
