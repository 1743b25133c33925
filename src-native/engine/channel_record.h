#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
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
  std::string lastSignature;  // what JS last saw of this contact (contents, no addresses)
  uint32_t liveSessions = 0;  // encrypted sessions in what JS last saw
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
  bool endedHere = false;  // finish() ended the sessions: no restart until a new query
  // A query of ours went out (init(), refresh(), a held write, a restart) at lastQuery, and no
  // AKE message of the contact's came since.
  bool queryUnanswered = false;
  std::chrono::steady_clock::time_point lastQuery{};
  uint32_t restarts = 0;                                   // restarts in the current budget window
  std::chrono::steady_clock::time_point lastAkeMessage{};  // the contact's last AKE message or query
};

}  // namespace otr
