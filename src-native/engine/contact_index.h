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

#include <cstdint>
#include <deque>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/channel_record.h"
#include "otr/libotr.h"

namespace otr {

// account, protocol and username joined by NULs: the key of a contact and of its channel.
std::string ChannelKey(const std::string& account, const std::string& protocol, const std::string& username);
// The same key in a buffer of this thread's, for a lookup: every job looks its contact up, and
// a key built afresh each time is an allocation or two per message. Valid until the thread's
// next LookupKey.
const std::string& LookupKey(std::string_view account, std::string_view protocol, std::string_view username);

class ContactIndex {
 public:
  ConnContext* Master(const std::string& key) const;
  // Keeps an entry already there (found under the shared lock: nearly always the case).
  void AddMaster(const std::string& key, ConnContext* master);
  void EraseMaster(const std::string& key);

  ChannelRecord* Channel(uint32_t id) const;
  ChannelRecord* ChannelByName(const std::string& key) const;
  // Null (and the record freed) when the name has a channel already.
  ChannelRecord* AddChannel(std::unique_ptr<ChannelRecord> channel);
  // Frees the record: nothing may point at it afterwards.
  void EraseChannel(ChannelRecord* channel);
  // Everything named `from` (master, channel, bound id) is named `to` from now on, which
  // the caller made sure is free; returns the channel, if any.
  ChannelRecord* Rename(const std::string& from, const std::string& to, const std::string& newUsername);
  std::vector<ChannelRecord*> Channels() const;
  // --- identity ---
  // The key `id` is bound to; empty when it is not bound.
  std::string KeyOf(uint64_t id) const;
  uint64_t IdOf(const std::string& key) const;
  // Binds `id` to `key` unless it is bound already (then its own key is returned, whatever
  // `key` says) or `key` is bound to another id (then empty is returned).
  std::string Bind(uint64_t id, const std::string& key);
  void Unbind(uint64_t id);
  void UnbindKey(const std::string& key);

  // --- tombstones: names whose private contact was freed (see forget.cc) ---
  // At most kMaxTombstones are kept, the oldest dropped first.
  static constexpr size_t kMaxTombstones = 65536;
  void AddTombstone(const std::string& key);
  bool HasTombstone(const std::string& key) const;
  // True if there was one (it is gone now).
  bool TakeTombstone(const std::string& key);
  size_t TombstoneCount() const;

  size_t ContactCount() const;
  size_t ChannelCount() const;

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, ConnContext*> masters_;  // ChannelKey → master context
  std::unordered_map<uint32_t, std::unique_ptr<ChannelRecord>> channels_;
  std::unordered_map<std::string, ChannelRecord*> byName_;
  std::unordered_map<uint64_t, std::string> keyOfId_;
  std::unordered_map<std::string, uint64_t> idOfKey_;
  // Under mutex_: the front of the order list, and its tombstone if it is still that entry's.
  void DropOldestTombstone();
  std::unordered_map<std::string, uint64_t> tombstones_;  // name → when it was added
  std::deque<std::pair<std::string, uint64_t>> tombstoneOrder_;
  uint64_t tombstoneSeq_ = 0;
};

}  // namespace otr
