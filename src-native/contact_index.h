// The contact index of one OTR instance: every contact's master context and every open
// channel, by name and by id. Every job reads it; the jobs that add contacts (a contact job
// whose call made libotr create the master) or open, forget and rename them change it, so it
// has its own lock, held only for the lookup or the change.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "libotr.h"

namespace otr {

// Per channel settings that libotr's policy/max_message_size ops read, and what the channel
// keeps between calls. Only the channel's strand (or an instance-wide job) touches it.
struct ChannelRecord {
  uint32_t id = 0;
  std::string account, protocol, username;
  OtrlPolicy policy = OTRL_POLICY_DEFAULT;
  int maxMessageSize = 0;
  uint32_t callbacks = 0;  // ChannelCallback bits: which value-returning callbacks JS has
  otrl_instag_t selected = OTRL_INSTAG_BEST;
  ConnContext* master = nullptr;  // libotr's; forget.cc frees it only after this record
  std::deque<std::string> held;   // writes waiting for the channel to be private
  bool refreshing = false;
  // Sessions kept encrypted through a re-AKE the contact started (see Receive in channel.cc).
  std::vector<ConnContext*> rekeyedByContact;
  std::string lastSignature;      // what JS last saw of this contact (contents, no addresses)
  uint32_t liveSessions = 0;      // encrypted sessions in what JS last saw
  // The human-readable part of our OTR queries (see wire_text.cc); libotr's own when unset.
  bool customQuery = false;
  std::string queryText;
  // Line-based transports (IRC): no wire text may contain a line break.
  bool lineBased = false;
};


// account, protocol and username joined by NULs: the key of a contact and of its channel.
std::string ChannelKey(const std::string& account, const std::string& protocol, const std::string& username);

class ContactIndex {
 public:
  ConnContext* Master(const std::string& key) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const auto found = masters_.find(key);
    return found == masters_.end() ? nullptr : found->second;
  }
  // Keeps an entry already there.
  void AddMaster(const std::string& key, ConnContext* master) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    masters_.emplace(key, master);
  }
  void EraseMaster(const std::string& key) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    masters_.erase(key);
  }
  void RenameMaster(const std::string& from, const std::string& to, ConnContext* master) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    masters_.erase(from);
    masters_[to] = master;
  }

  ChannelRecord* Channel(uint32_t id) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const auto found = channels_.find(id);
    return found == channels_.end() ? nullptr : found->second.get();
  }
  ChannelRecord* ChannelByName(const std::string& key) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const auto found = byName_.find(key);
    return found == byName_.end() ? nullptr : found->second;
  }
  ChannelRecord* AddChannel(std::unique_ptr<ChannelRecord> channel) {
    ChannelRecord* raw = channel.get();
    std::unique_lock<std::shared_mutex> lock(mutex_);
    byName_[ChannelKey(raw->account, raw->protocol, raw->username)] = raw;
    channels_[raw->id] = std::move(channel);
    return raw;
  }
  // Frees the record: nothing may point at it afterwards.
  void EraseChannel(ChannelRecord* channel) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    byName_.erase(ChannelKey(channel->account, channel->protocol, channel->username));
    channels_.erase(channel->id);
  }
  // The channel named `from` (if any) is named `to` from now on; returns it.
  ChannelRecord* RenameChannel(const std::string& from, const std::string& to, const std::string& newUsername) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    auto found = byName_.find(from);
    if (found == byName_.end()) return nullptr;
    ChannelRecord* channel = found->second;
    byName_.erase(found);
    channel->username = newUsername;
    byName_[to] = channel;
    return channel;
  }
  std::vector<ChannelRecord*> Channels() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    std::vector<ChannelRecord*> all;
    for (const auto& entry : channels_) all.push_back(entry.second.get());
    return all;
  }
  size_t ContactCount() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return masters_.size();
  }
  size_t ChannelCount() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return channels_.size();
  }

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, ConnContext*> masters_;  // ChannelKey → master context
  std::unordered_map<uint32_t, std::unique_ptr<ChannelRecord>> channels_;
  std::unordered_map<std::string, ChannelRecord*> byName_;
};

}  // namespace otr
