// A contact that writes into a session this side no longer has (the process restarted,
// another node took the contact over, the contact was freed) still believes it is private:
// its client shows the session and its messages are lost without a word. libotr 4.1 only
// reports RCVDMSG_NOT_IN_PRIVATE and sends nothing back, so nothing heals until an operator
// starts OTR again. Here, the library sends a query itself, as init() does: the contact's
// libotr answers a query even inside the session it believes in, and the AKE that follows
// gives both sides a new one.
//
// Bounded, since a contact can send undecryptable data at will: no restart while a query of
// ours (a restart's, init()'s, ...) has had no AKE message in answer, for a key-work window
// (budget.cc) after it went out, nor while an AKE with the contact is under way (the
// contact's client keeps writing into its old session until the new one is up: a query now
// would restart the AKE that heals it); at most kRestartsPerWindow per window, each costing
// one unit of the contact's budget, none over it. None after
// this side's own finish() (a message that crossed the end does not undo the user's decision)
// until the application sends a query again, none while refresh() re-keys (its query is out),
// and none with the channel's restartLostSessions off. The query never carries held writes:
// those wait for the encrypted session as always.
#include <cstring>

#include "engine/engine.h"

namespace otr {

namespace {

constexpr uint32_t kRestartsPerWindow = 3;
// An AKE counts as under way this long after the contact's last AKE message: libotr's own
// bound on an AKE waiting for its next message (MAX_AKE_WAIT_TIME). One stalled longer does
// not hold a restart back.
constexpr std::chrono::seconds kAkeUnderWayFor{60};

bool AkeUnderWay(ConnContext* master, const ChannelRecord& channel) {
  if (std::chrono::steady_clock::now() - channel.lastAkeMessage >= kAkeUnderWayFor) return false;
  for (ConnContext* c = master; c != nullptr && c->m_context == master; c = c->next) {
    if (c->auth.authstate != OTRL_AUTHSTATE_NONE) return true;
  }
  return false;
}

}  // namespace

// libotr 4.1 drops a v3 data message from an instance it did not know (it adds the instance's
// context and stops there) without reporting it, so after a restart the contact's first
// message into the lost session would vanish without an event. It is reported as libotr
// reports the next ones. Messages flagged "ignore if unreadable" (heartbeats, SMP, the
// contact ending its session) are not.
void Engine::NoticeUnknownInstanceData(CallScope& scope, ChannelRecord& channel, const std::string& text,
                                       const std::vector<ConnContext*>& before) {
  unsigned char flags = 0;
  if (otrl_proto_data_read_flags(text.c_str(), &flags) != 0 || (flags & OTRL_MSGFLAGS_IGNORE_UNREADABLE) != 0) return;
  const char* tag = std::strstr(text.c_str(), "?OTR");
  otrl_instag_t sender = 0, receiver = 0;
  if (tag == nullptr || otrl_proto_instance(tag, &sender, &receiver) != 0) return;
  ConnContext* master = MasterFor(channel);
  for (ConnContext* c = master; c != nullptr && c->m_context == master; c = c->next) {
    if (c == master || c->their_instance != sender || c->msgstate == OTRL_MSGSTATE_ENCRYPTED) continue;
    bool added = true;
    for (const ConnContext* old : before) added = added && old != c;
    if (!added) return;
    scope.effects.push_back(MakeEffect(channel.id, MsgEventPayload{OTRL_MSGEVENT_RCVDMSG_NOT_IN_PRIVATE, false, {}}));
    scope.lostSession = true;
    scope.lostSessionInstag = sender;
    return;
  }
}

void Engine::RestartLostSession(CallScope& scope, ChannelRecord& channel) {
  scope.lostSession = false;
  if (!channel.restartLostSessions || channel.endedHere || channel.refreshing) return;
  if ((channel.policy & (OTRL_POLICY_ALLOW_V2 | OTRL_POLICY_ALLOW_V3)) == 0) return;
  if (OverBudget(channel) || channel.restarts >= kRestartsPerWindow) return;
  const bool queryOut =
      channel.queryUnanswered && std::chrono::steady_clock::now() - channel.lastQuery < limits_.keyWorkWindow;
  if (queryOut || AkeUnderWay(MasterFor(channel), channel)) return;
  ++channel.budgetUsed;
  ++channel.restarts;
  scope.effects.push_back(MakeEffect(channel.id, SessionRestartPayload{scope.lostSessionInstag}));
  Batch sent;
  SendQuery(scope, sent, channel);
  if (!sent.ok) ReportError(scope, sent.failure);
}

}  // namespace otr
