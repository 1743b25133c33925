#include "engine/contact_index.h"

#include <mutex>
#include <shared_mutex>
#include <utility>

namespace otr {

std::string ChannelKey(const std::string& account, const std::string& protocol, const std::string& username) {
  std::string key;
  key.reserve(account.size() + protocol.size() + username.size() + 2);
  key.append(account).push_back('\0');
  key.append(protocol).push_back('\0');
  key.append(username);
  return key;
}

const std::string& LookupKey(std::string_view account, std::string_view protocol, std::string_view username) {
  static thread_local std::string key;
  key.clear();
  key.append(account).push_back('\0');
  key.append(protocol).push_back('\0');
  key.append(username);
  return key;
}

ConnContext* ContactIndex::Master(const std::string& key) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const auto found = masters_.find(key);
  return found == masters_.end() ? nullptr : found->second;
}

void ContactIndex::AddMaster(const std::string& key, ConnContext* master) {
  {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    if (masters_.find(key) != masters_.end()) return;
  }
  std::unique_lock<std::shared_mutex> lock(mutex_);
  masters_.emplace(key, master);
}

void ContactIndex::EraseMaster(const std::string& key) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  masters_.erase(key);
}

ChannelRecord* ContactIndex::Channel(uint32_t id) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const auto found = channels_.find(id);
  return found == channels_.end() ? nullptr : found->second.get();
}

ChannelRecord* ContactIndex::ChannelByName(const std::string& key) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const auto found = byName_.find(key);
  return found == byName_.end() ? nullptr : found->second;
}

ChannelRecord* ContactIndex::AddChannel(std::unique_ptr<ChannelRecord> channel) {
  ChannelRecord* raw = channel.get();
  std::unique_lock<std::shared_mutex> lock(mutex_);
  if (!byName_.emplace(ChannelKey(raw->account, raw->protocol, raw->username), raw).second) return nullptr;
  channels_[raw->id] = std::move(channel);
  return raw;
}

void ContactIndex::EraseChannel(ChannelRecord* channel) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  byName_.erase(ChannelKey(channel->account, channel->protocol, channel->username));
  channels_.erase(channel->id);
}

ChannelRecord* ContactIndex::Rename(const std::string& from, const std::string& to, const std::string& newUsername) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  const auto master = masters_.find(from);
  if (master != masters_.end()) {
    masters_[to] = master->second;
    masters_.erase(from);
  }
  const auto holder = idOfKey_.find(from);
  if (holder != idOfKey_.end()) {
    const uint64_t id = holder->second;
    idOfKey_.erase(holder);
    idOfKey_[to] = id;
    keyOfId_[id] = to;
  }
  auto found = byName_.find(from);
  if (found == byName_.end()) return nullptr;
  ChannelRecord* channel = found->second;
  byName_.erase(found);
  channel->username = newUsername;
  byName_[to] = channel;
  return channel;
}

std::vector<ChannelRecord*> ContactIndex::Channels() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  std::vector<ChannelRecord*> all;
  for (const auto& entry : channels_) all.push_back(entry.second.get());
  return all;
}

std::string ContactIndex::KeyOf(uint64_t id) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const auto found = keyOfId_.find(id);
  return found == keyOfId_.end() ? std::string() : found->second;
}

uint64_t ContactIndex::IdOf(const std::string& key) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const auto found = idOfKey_.find(key);
  return found == idOfKey_.end() ? 0 : found->second;
}

std::string ContactIndex::Bind(uint64_t id, const std::string& key) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  const auto bound = keyOfId_.find(id);
  if (bound != keyOfId_.end()) return bound->second;
  const auto holder = idOfKey_.find(key);
  if (holder != idOfKey_.end() && holder->second != id) return std::string();
  keyOfId_[id] = key;
  idOfKey_[key] = id;
  return key;
}

void ContactIndex::Unbind(uint64_t id) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  const auto bound = keyOfId_.find(id);
  if (bound == keyOfId_.end()) return;
  const auto holder = idOfKey_.find(bound->second);
  if (holder != idOfKey_.end() && holder->second == id) idOfKey_.erase(holder);
  keyOfId_.erase(bound);
}

void ContactIndex::UnbindKey(const std::string& key) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  const auto holder = idOfKey_.find(key);
  if (holder == idOfKey_.end()) return;
  keyOfId_.erase(holder->second);
  idOfKey_.erase(holder);
}

void ContactIndex::AddTombstone(const std::string& key) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  if (tombstones_.count(key) != 0) return;
  tombstones_[key] = ++tombstoneSeq_;
  tombstoneOrder_.emplace_back(key, tombstoneSeq_);
  while (tombstones_.size() > kMaxTombstones) DropOldestTombstone();
  // Entries of names taken since stay in the order list until they reach its front.
  while (tombstoneOrder_.size() > 2 * kMaxTombstones) DropOldestTombstone();
}

bool ContactIndex::HasTombstone(const std::string& key) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return tombstones_.count(key) != 0;
}

bool ContactIndex::TakeTombstone(const std::string& key) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  return tombstones_.erase(key) != 0;
}

size_t ContactIndex::TombstoneCount() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return tombstones_.size();
}

size_t ContactIndex::ContactCount() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return masters_.size();
}

size_t ContactIndex::ChannelCount() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return channels_.size();
}

void ContactIndex::DropOldestTombstone() {
  const auto& [key, seq] = tombstoneOrder_.front();
  const auto found = tombstones_.find(key);
  if (found != tombstones_.end() && found->second == seq) tombstones_.erase(found);
  tombstoneOrder_.pop_front();
}

}  // namespace otr
