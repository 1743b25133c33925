// The contact index of one OTR instance: every contact's master context and every open
// channel, by name and by id; which contact id names which contact; and the tombstones of
// private contacts that were freed. Every job reads it; the jobs that add contacts (a contact
// job whose call made libotr create the master) or open, forget and rename them change it, so
// it has its own lock, held only for the lookup or the change.
//
// Identity: JS names each Contact object with an id (lib/contact.ts). The first call that
// carries an id binds it to the contact of the name it gives; from then on the id, not the
// name, says which contact a call is for, so a call made before a rename reaches the same
// contact after it. A name is bound to at most one id, and a name has at most one master and
// one channel: a second is refused.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "otr/libotr.h"

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
  // When each instance session last received or went secure, in this channel's order: the
  // one idle the longest makes room first (guard.cc).
  std::unordered_map<const ConnContext*, uint64_t> lastUse;
  uint64_t useClock = 0;
  std::string lastSignature;      // what JS last saw of this contact (contents, no addresses)
  uint32_t liveSessions = 0;      // encrypted sessions in what JS last saw
  // The human-readable part of our OTR queries (see wire_text.cc); libotr's own when unset.
  bool customQuery = false;
  std::string queryText;
  // Line-based transports (IRC): no wire text may contain a line break.
  bool lineBased = false;
  // The JS Contact this channel belongs to (see ContactIndex, identity).
  uint64_t contactId = 0;
  // A session of this channel has been encrypted: freeing it leaves a tombstone.
  bool wasPrivate = false;
  // Queries of the contact answered with a DH-Commit while nothing else came from it and no
  // session went secure (past a few, a repeated query is not answered: budget.cc).
  uint32_t queriesAnswered = 0;
  // What the contact's messages made us do in the current window (see budget.cc).
  std::chrono::steady_clock::time_point budgetSince{};
  uint32_t budgetUsed = 0;
  bool budgetReported = false;
  // Restarting sessions the contact writes into and this side does not have (restart.cc).
  bool restartLostSessions = true;
  bool endedHere = false;          // finish() ended the sessions: no restart until a new query
  // A query of ours went out (init(), refresh(), a held write, a restart) at lastQuery, and no
  // AKE message of the contact's came since.
  bool queryUnanswered = false;
  std::chrono::steady_clock::time_point lastQuery{};
  uint32_t restarts = 0;           // restarts in the current budget window
  std::chrono::steady_clock::time_point lastAkeMessage{};  // the contact's last AKE message or query
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
  // Null (and the record freed) when the name has a channel already.
  ChannelRecord* AddChannel(std::unique_ptr<ChannelRecord> channel) {
    ChannelRecord* raw = channel.get();
    std::unique_lock<std::shared_mutex> lock(mutex_);
    if (!byName_.emplace(ChannelKey(raw->account, raw->protocol, raw->username), raw).second) return nullptr;
    channels_[raw->id] = std::move(channel);
    return raw;
  }
  // Frees the record: nothing may point at it afterwards.
  void EraseChannel(ChannelRecord* channel) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    byName_.erase(ChannelKey(channel->account, channel->protocol, channel->username));
    channels_.erase(channel->id);
  }
  // Everything named `from` (master, channel, bound id) is named `to` from now on, which
  // the caller made sure is free; returns the channel, if any.
  ChannelRecord* Rename(const std::string& from, const std::string& to, const std::string& newUsername) {
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
  std::vector<ChannelRecord*> Channels() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    std::vector<ChannelRecord*> all;
    for (const auto& entry : channels_) all.push_back(entry.second.get());
    return all;
  }
  // --- identity ---
  // The key `id` is bound to; empty when it is not bound.
  std::string KeyOf(uint64_t id) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const auto found = keyOfId_.find(id);
    return found == keyOfId_.end() ? std::string() : found->second;
  }
  uint64_t IdOf(const std::string& key) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const auto found = idOfKey_.find(key);
    return found == idOfKey_.end() ? 0 : found->second;
  }
  // Binds `id` to `key` unless it is bound already (then its own key is returned, whatever
  // `key` says) or `key` is bound to another id (then empty is returned).
  std::string Bind(uint64_t id, const std::string& key) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    const auto bound = keyOfId_.find(id);
    if (bound != keyOfId_.end()) return bound->second;
    const auto holder = idOfKey_.find(key);
    if (holder != idOfKey_.end() && holder->second != id) return std::string();
    keyOfId_[id] = key;
    idOfKey_[key] = id;
    return key;
  }
  void Unbind(uint64_t id) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    const auto bound = keyOfId_.find(id);
    if (bound == keyOfId_.end()) return;
    const auto holder = idOfKey_.find(bound->second);
    if (holder != idOfKey_.end() && holder->second == id) idOfKey_.erase(holder);
    keyOfId_.erase(bound);
  }
  void UnbindKey(const std::string& key) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    const auto holder = idOfKey_.find(key);
    if (holder == idOfKey_.end()) return;
    keyOfId_.erase(holder->second);
    idOfKey_.erase(holder);
  }

  // --- tombstones: names whose private contact was freed (see forget.cc) ---
  // At most kMaxTombstones are kept, the oldest dropped first.
  static constexpr size_t kMaxTombstones = 65536;
  void AddTombstone(const std::string& key) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    if (tombstones_.count(key) != 0) return;
    tombstones_[key] = ++tombstoneSeq_;
    tombstoneOrder_.emplace_back(key, tombstoneSeq_);
    while (tombstones_.size() > kMaxTombstones) DropOldestTombstone();
    // Entries of names taken since stay in the order list until they reach its front.
    while (tombstoneOrder_.size() > 2 * kMaxTombstones) DropOldestTombstone();
  }
  bool HasTombstone(const std::string& key) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return tombstones_.count(key) != 0;
  }
  // True if there was one (it is gone now).
  bool TakeTombstone(const std::string& key) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    return tombstones_.erase(key) != 0;
  }
  size_t TombstoneCount() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return tombstones_.size();
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
  std::unordered_map<uint64_t, std::string> keyOfId_;
  std::unordered_map<std::string, uint64_t> idOfKey_;
  // Under mutex_: the front of the order list, and its tombstone if it is still that entry's.
  void DropOldestTombstone() {
    const auto& [key, seq] = tombstoneOrder_.front();
    const auto found = tombstones_.find(key);
    if (found != tombstones_.end() && found->second == seq) tombstones_.erase(found);
    tombstoneOrder_.pop_front();
  }
  std::unordered_map<std::string, uint64_t> tombstones_;  // name → when it was added
  std::deque<std::pair<std::string, uint64_t>> tombstoneOrder_;
  uint64_t tombstoneSeq_ = 0;
};

}  // namespace otr
