#include "io/file_trust_store.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "io/files.h"

namespace otr {

namespace {

std::vector<FingerprintRow>::iterator Find(std::vector<FingerprintRow>& rows, const std::string& hex) {
  return std::find_if(rows.begin(), rows.end(), [&](const FingerprintRow& row) { return row.hex == hex; });
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

}  // namespace

void FileTrustStore::LoadRows(const std::string& bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t start = 0;
  while (start < bytes.size()) {
    size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    const std::string line = bytes.substr(start, end - start);
    start = end + 1;
    // Well-formed lines only (WellFormedFingerprints): 4 or 5 tab-separated fields.
    std::vector<std::string> fields;
    size_t at = 0;
    for (;;) {
      const size_t tab = line.find('\t', at);
      fields.push_back(line.substr(at, tab == std::string::npos ? std::string::npos : tab - at));
      if (tab == std::string::npos) break;
      at = tab + 1;
    }
    if (fields.size() < 4) continue;
    ContactName contact{fields[1], fields[2], fields[0]};
    auto& rows = rows_[contact];
    const std::string hex = Lower(fields[3]);
    auto found = Find(rows, hex);
    // As libotr reads the file: one row per fingerprint, the last line's trust wins.
    if (found == rows.end())
      rows.push_back(FingerprintRow{hex, fields.size() == 5 ? fields[4] : std::string()});
    else
      found->trust = fields.size() == 5 ? fields[4] : std::string();
  }
}

void FileTrustStore::MarkDirty() {
  std::lock_guard<std::mutex> lock(mutex_);
  Changed();
}

void FileTrustStore::Seen(const ContactName& contact, const std::string& hex) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& rows = rows_[contact];
  if (Find(rows, hex) != rows.end()) return;
  rows.push_back(FingerprintRow{hex, std::string()});
  Changed();
}

void FileTrustStore::SetTrust(const ContactName& contact, const std::string& hex, const std::string& trust) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& rows = rows_[contact];
  auto found = Find(rows, hex);
  if (found == rows.end()) {
    rows.push_back(FingerprintRow{hex, trust});
  } else if (found->trust != trust) {
    found->trust = trust;
  } else {
    return;
  }
  Changed();
}

void FileTrustStore::Forget(const ContactName& contact, const std::string& hex) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto entry = rows_.find(contact);
  if (entry == rows_.end()) return;
  auto found = Find(entry->second, hex);
  if (found == entry->second.end()) return;
  entry->second.erase(found);
  if (entry->second.empty()) rows_.erase(entry);
  Changed();
}

void FileTrustStore::ForgetContact(const ContactName& contact) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (rows_.erase(contact) != 0) Changed();
}

void FileTrustStore::Rename(const ContactName& from, const ContactName& to) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto entry = rows_.find(from);
  if (entry == rows_.end()) return;
  std::vector<FingerprintRow> moved = std::move(entry->second);
  rows_.erase(entry);
  auto& target = rows_[to];
  for (FingerprintRow& row : moved) {
    auto found = Find(target, row.hex);
    if (found == target.end())
      target.push_back(std::move(row));
    else
      found->trust = row.trust;
  }
  Changed();
}

std::vector<FingerprintRow> FileTrustStore::Rows(const ContactName& contact) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto entry = rows_.find(contact);
  return entry == rows_.end() ? std::vector<FingerprintRow>() : entry->second;
}

bool FileTrustStore::Dirty() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return version_ != committed_;
}

std::string FileTrustStore::Serialise() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return SerialiseLocked();
}

std::string FileTrustStore::SerialiseLocked() const {
  std::string out;
  for (const auto& entry : rows_) {
    const ContactName& c = entry.first;
    for (const FingerprintRow& row : entry.second) {
      out.append(c.username).push_back('\t');
      out.append(c.account).push_back('\t');
      out.append(c.protocol).push_back('\t');
      out.append(row.hex).push_back('\t');
      out.append(row.trust).push_back('\n');
    }
  }
  return out;
}

std::string FileTrustStore::Commit() {
  std::lock_guard<std::mutex> writing(writing_);
  uint64_t version;
  std::string bytes;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (version_ == committed_) return std::string();
    version = version_;
    bytes = SerialiseLocked();
  }
  const std::string why = WriteFileAtomically(
      path_, 0600, [&](FILE* file) { return std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size(); });
  if (!why.empty()) return why;
  std::lock_guard<std::mutex> lock(mutex_);
  committed_ = std::max(committed_, version);
  return std::string();
}

}  // namespace otr
