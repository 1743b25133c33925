// What one contact's messages may make us compute and send. A query, a whitespace tag or an AKE
// message costs a Diffie-Hellman exponentiation or a DSA signature (a few milliseconds), an SMP
// step tens of milliseconds, and most of them make us send a reply. Without a bound a contact
// could turn a few bytes into seconds of CPU and kilobytes of replies (2,000 queries: 2,000
// DH-Commits). So, per contact and per window (Limits::keyWorkWindow):
//
// - queries (or whitespace tags) that keep coming while we wait for the DH-Key our answer to
//   the first asked for — nothing else has come from the contact since, no session has gone
//   secure — are answered kRepeatsAnswered times (a client retrying over a lossy link) and
//   then no more: libotr would restart the AKE for each one (a tag is stripped and the text
//   kept). A query after the contact sent anything else (two AKEs that crossed and stalled,
//   then a client's retry) is answered again;
// - each message that starts or continues an AKE, each SMP step and each received message
//   that made us reply costs one unit, up to Limits::keyWorkPerWindow; past that, AKE messages
//   are dropped before libotr sees them, a new SMP exchange the contact starts is refused
//   (libotr sees its SMP state busy, which costs nothing), and replies to what the contact
//   sent are withheld. One RCVDMSG_GENERAL_ERR event per window says so.
//
// The contact's data messages are always decrypted: the conversation goes on.
#include <cstring>
#include <string>

#include "engine/engine.h"

namespace otr {

namespace {

constexpr uint32_t kRepeatsAnswered = 2;

bool StartsAke(OtrlMessageType type) {
  return type == OTRL_MSGTYPE_QUERY || type == OTRL_MSGTYPE_TAGGEDPLAINTEXT || type == OTRL_MSGTYPE_DH_COMMIT ||
         type == OTRL_MSGTYPE_DH_KEY || type == OTRL_MSGTYPE_REVEALSIG || type == OTRL_MSGTYPE_SIGNATURE ||
         type == OTRL_MSGTYPE_V1_KEYEXCH;
}

// The text without its whitespace tag, as libotr would strip it.
std::string WithoutTag(const std::string& text, OtrlPolicy policy) {
  const char* start = nullptr;
  const char* end = nullptr;
  otrl_proto_whitespace_bestversion(text.c_str(), &start, &end, policy);
  if (start == nullptr || end == nullptr) return text;
  std::string stripped(text, 0, static_cast<size_t>(start - text.c_str()));
  stripped.append(end);
  return stripped;
}

}  // namespace

void Engine::OpenBudgetWindow(ChannelRecord& channel) {
  const auto now = std::chrono::steady_clock::now();
  if (channel.budgetSince != std::chrono::steady_clock::time_point{} &&
      now - channel.budgetSince < limits_.keyWorkWindow) {
    return;
  }
  channel.budgetSince = now;
  channel.budgetUsed = 0;
  channel.budgetReported = false;
  channel.restarts = 0;
}

bool Engine::OverBudget(ChannelRecord& channel) {
  OpenBudgetWindow(channel);
  return channel.budgetUsed >= limits_.keyWorkPerWindow;
}

void Engine::ReportOverBudget(CallScope& scope, ChannelRecord& channel) {
  if (channel.budgetReported) return;
  channel.budgetReported = true;
  scope.effects.push_back(MakeEffect(
      channel.id,
      MsgEventPayload{OTRL_MSGEVENT_RCVDMSG_GENERAL_ERR, true,
                      channel.username + " used up its budget of " + std::to_string(limits_.keyWorkPerWindow) +
                          " key exchanges, SMP steps and replies per " + std::to_string(limits_.keyWorkWindow.count()) +
                          " ms: until the window ends its key-exchange messages are dropped, SMP it starts is "
                          "refused and nothing it sends is answered"}));
}

IncomingVerdict Engine::AdmitKeyWork(CallScope& scope, ChannelRecord& channel, const std::string& text,
                                     OtrlMessageType type) {
  IncomingVerdict verdict;
  verdict.overBudget = OverBudget(channel);
  const bool query = type == OTRL_MSGTYPE_QUERY || type == OTRL_MSGTYPE_TAGGEDPLAINTEXT;
  // A fragment that completes nothing yet is no message of its own.
  if (!query && type != OTRL_MSGTYPE_NOTOTR) channel.queriesAnswered = 0;
  if (!StartsAke(type)) return verdict;
  channel.queryUnanswered = false;  // the contact answers (our query, or anything)
  channel.lastAkeMessage = std::chrono::steady_clock::now();
  ConnContext* master = MasterFor(channel);
  // libotr keeps the master awaiting a DH-Key after an AKE completes on an instance (other
  // instances may answer the same DH-Commit): only a wait nothing has ended since counts.
  const bool repeated = query && channel.queriesAnswered > kRepeatsAnswered && master != nullptr &&
                        master->auth.authstate == OTRL_AUTHSTATE_AWAITING_DHKEY;
  if (!repeated && !verdict.overBudget) {
    ++channel.budgetUsed;
    verdict.answersQuery = query;
    return verdict;
  }
  if (verdict.overBudget && !repeated) ReportOverBudget(scope, channel);
  if (type == OTRL_MSGTYPE_TAGGEDPLAINTEXT) {
    verdict.text = WithoutTag(text, channel.policy);  // the words still reach the user
    verdict.replaced = true;
    return verdict;
  }
  verdict.drop = true;
  return verdict;
}

void Engine::ChargeAfterReceive(ChannelRecord& channel, uint32_t smpSteps, bool replied) {
  const uint32_t cost = smpSteps + (replied ? 1 : 0);
  if (cost == 0) return;
  OpenBudgetWindow(channel);
  channel.budgetUsed += cost;
}

}  // namespace otr
