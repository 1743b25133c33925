// A channel's libotr calls: query, send, receive, finish, refresh, SMP, symmetric key, poll.
// After each call: SMP aborts libotr asked for, writes held for the AKE, and the contact
// state JS mirrors.
#include <libotr/sm.h>

#include <cstring>
#include <utility>

#include "engine/engine.h"
#include "otr/smp_gate.h"
#include "util/thread_scratch.h"
#include "util/wipe.h"

namespace otr {

namespace {

// libotr's SMP state machine waits for a first message (EXPECT1) unless an SMP is under way;
// the contact's contexts (its master, then its instances) are together in the list.
bool SmpUnderway(const ConnContext* master) {
  for (const ConnContext* c = master; c != nullptr && (c == master || c->m_context == master); c = c->next) {
    if (c->smstate != nullptr && c->smstate->nextExpected != OTRL_SMP_EXPECT1) return true;
  }
  return false;
}

void Fail(Batch& result, const char* code, const std::string& message, gcry_error_t err = 0) {
  result.ok = false;
  result.failure = MakeFailure(code, message, err);
}

template <typename P>
void EmitEvent(CallScope& scope, ChannelRecord& channel, P payload) {
  scope.effects.push_back(MakeEffect(channel.id, std::move(payload)));
}

MsgEventPayload MessageEvent(int event, const std::string& text) {
  MsgEventPayload payload;
  payload.event = event;
  payload.hasText = true;
  payload.text = text;
  return payload;
}

const unsigned char* Bytes(const std::string& text) { return reinterpret_cast<const unsigned char*>(text.data()); }

bool IsAkeMessage(OtrlMessageType type) {
  return type == OTRL_MSGTYPE_DH_COMMIT || type == OTRL_MSGTYPE_DH_KEY || type == OTRL_MSGTYPE_REVEALSIG ||
         type == OTRL_MSGTYPE_SIGNATURE || type == OTRL_MSGTYPE_V1_KEYEXCH;
}

}  // namespace

void Engine::OpenChannel(CallScope& scope, Batch& result, ChannelRecord settings) {
  ContactRef ref;
  if (!ResolveOrFail(settings.contactId, settings.account, settings.protocol, settings.username, ref, result)) return;
  auto channel = std::make_unique<ChannelRecord>(std::move(settings));
  channel->account = ref.account;
  channel->protocol = ref.protocol;
  channel->username = ref.username;
  ChannelRecord* raw = channel.get();
  if (scope.us == us_ && otrl_privkey_find(us_, raw->account.c_str(), raw->protocol.c_str()) != nullptr &&
      otrl_instag_find(us_, raw->account.c_str(), raw->protocol.c_str()) == nullptr) {
    GenerateInstag(scope, raw->account.c_str(), raw->protocol.c_str());
  }
  raw = index_.AddChannel(std::move(channel));
  if (raw == nullptr) {
    Fail(result, "ERR_OTR_CHANNEL_EXISTS", "a channel to " + ref.username + " is already open");
    return;
  }
  // A private contact was freed under this name: its next channel starts FINISHED, so nothing
  // goes out in clear until the application calls init() or finish() (see forget.cc).
  if (index_.TakeTombstone(ref.key)) {
    raw->wasPrivate = true;
    WithContact(scope, raw->account, raw->protocol, raw->username, [&] {
      ConnContext* master = otrl_context_find(scope.us, raw->username.c_str(), raw->account.c_str(),
                                              raw->protocol.c_str(), OTRL_INSTAG_MASTER, 1, nullptr, nullptr, nullptr);
      if (master != nullptr && master->msgstate == OTRL_MSGSTATE_PLAINTEXT) otrl_context_force_finished(master);
    });
  }
  ConnContext* master = MasterFor(*raw);
  if (master != nullptr) {
    if (master->msgstate == OTRL_MSGSTATE_FINISHED) raw->wasPrivate = true;
    EmitContactState(scope, master, raw);
  }
}

void Engine::SendNow(CallScope& scope, Batch& result, ChannelRecord& channel, const std::string& text) {
  char* sent = nullptr;
  scope.sendingText = &text;
  const gcry_error_t err = otrl_message_sending(
      scope.us, ops(), &scope, channel.account.c_str(), channel.protocol.c_str(), channel.username.c_str(),
      channel.selected, text.c_str(), nullptr, &sent, OTRL_FRAGMENT_SEND_ALL, nullptr, nullptr, nullptr);
  scope.sendingText = nullptr;
  if (err != 0) {
    Fail(result, "ERR_OTR_ENCRYPTION", "the message was not sent", err);
  } else if (sent == nullptr) {
    // libotr leaves the message alone (policy NEVER/MANUAL, or OTR refused): send it as is.
    EmitWire(scope, &channel, text.c_str());
  }
  otrl_message_free(sent);
}

void Engine::SendQuery(CallScope& scope, Batch& result, ChannelRecord& channel) {
  // libotr turns a bare query into its default query text, which names the account. A
  // re-AKE that follows is ours: libotr's still_secure for it means what it says.
  channel.rekeyedByContact.clear();
  channel.endedHere = false;
  channel.queryUnanswered = true;
  channel.lastQuery = std::chrono::steady_clock::now();
  // Not fragmented (SEND_SKIP): the query is rewritten with the channel's text, then sent
  // whole; a query is never fragmented by anyone else either.
  char* query = nullptr;
  const gcry_error_t err = otrl_message_sending(
      scope.us, ops(), &scope, channel.account.c_str(), channel.protocol.c_str(), channel.username.c_str(),
      channel.selected, "?OTR?", nullptr, &query, OTRL_FRAGMENT_SEND_SKIP, nullptr, nullptr, nullptr);
  if (err != 0) {
    Fail(result, "ERR_OTR_ENCRYPTION", "the OTR query was not sent", err);
  } else if (query != nullptr && query[0] != '\0') {
    EmitWire(scope, &channel, query);
  }
  otrl_message_free(query);
}

// A read never fails its batch (the Batch& is unused): whatever the contact sent is reported
// through events, and the read resolves.
void Engine::Receive(CallScope& scope, Batch&, ChannelRecord& channel, const std::string& text) {
  OtrlMessageType type = OTRL_MSGTYPE_NOTOTR;
  if (!AdmitIncoming(scope, channel, text, &type)) return;
  const IncomingVerdict verdict = AdmitKeyWork(scope, channel, text, type);
  if (verdict.drop) return;
  const std::string& input = verdict.replaced ? verdict.text : text;
  scope.decrypted = false;
  char* plain = nullptr;
  OtrlTLV* tlvs = nullptr;
  ConnContext* context = nullptr;
  // libotr 4.1.1 bug (message.c, "switching from m_context to existing instance context"):
  // a v3 DH-Key for an instance whose master context awaits a DH-Key (we sent a DH-Commit
  // from the master, e.g. after the peer's query) copies the master's msgstate, plaintext,
  // over the instance's: an encrypted session silently drops to plaintext and our next
  // write goes out in clear. Anyone who can inject a query and a DH-Key can do it. Nothing
  // else in otrl_message_receiving moves an encrypted context to plaintext (the peer ending
  // the session gives FINISHED), so undo exactly that; the new AKE continues in auth state.
  struct WereEncrypted;
  struct ContextsBefore;
  ThreadScratch<ConnContext*, WereEncrypted> wereEncrypted;
  ThreadScratch<ConnContext*, ContextsBefore> before;  // the contact's contexts: those added by this message are new
  ConnContext* master = MasterFor(channel);
  if (master != nullptr) {
    for (ConnContext* c = master; c != nullptr && c->m_context == master; c = c->next) {
      before->push_back(c);
      if (c->msgstate == OTRL_MSGSTATE_ENCRYPTED) wereEncrypted->push_back(c);
    }
  }
  const uint32_t smpBefore = scope.smpSteps;
  scope.repliesSent = 0;
  scope.lostSession = false;
  scope.overBudget = verdict.overBudget;
  int internal;
  {
    SmpGate gate(master, verdict.overBudget);
    scope.withholdReplies = verdict.overBudget;
    internal =
        otrl_message_receiving(scope.us, ops(), &scope, channel.account.c_str(), channel.protocol.c_str(),
                               channel.username.c_str(), input.c_str(), &plain, &tlvs, &context, nullptr, nullptr);
    scope.withholdReplies = false;
  }
  if (scope.repliesWithheld > 0) {
    ReportOverBudget(scope, channel);
    scope.repliesWithheld = 0;
  }
  if (IsAkeMessage(type)) EmitEvent(scope, channel, AkeReceivedPayload{});
  if (type == OTRL_MSGTYPE_DATA && context == nullptr && !scope.lostSession) {
    NoticeUnknownInstanceData(scope, channel, input, *before);
  }
  ChargeAfterReceive(channel, scope.smpSteps - smpBefore, scope.repliesSent > 0);
  if (verdict.answersQuery && master == nullptr) master = MasterFor(channel);
  if (verdict.answersQuery && master != nullptr && master->auth.authstate == OTRL_AUTHSTATE_AWAITING_DHKEY) {
    ++channel.queriesAnswered;
  }
  for (ConnContext* c : *wereEncrypted) {
    if (c->msgstate != OTRL_MSGSTATE_PLAINTEXT) continue;
    c->msgstate = OTRL_MSGSTATE_ENCRYPTED;
    channel.rekeyedByContact.push_back(c);
    scope.stateMayHaveChanged = true;
  }
  // An AKE message may have started, advanced or ended an AKE: JS's view of what the contact
  // has to lose (ContactState flags) may have changed.
  if (type != OTRL_MSGTYPE_DATA && type != OTRL_MSGTYPE_NOTOTR) scope.stateMayHaveChanged = true;
  if (context != nullptr && context != context->m_context) channel.lastUse[context] = ++channel.useClock;
  TrimAfterReceive(scope, channel, *before);
  if (internal == 0) {
    // What libotr did decides `encrypted`: it decrypted a data message in this call. The
    // session that decrypted it says who sent it (see ReadPayload).
    ReadPayload read{plain != nullptr ? std::string(plain) : input, scope.decrypted,
                     context != nullptr ? context->their_instance : 0};
    if (scope.decrypted && context != nullptr && context->active_fingerprint != nullptr &&
        context->active_fingerprint->fingerprint != nullptr) {
      read.hasFingerprint = true;
      read.fingerprint = FingerprintHex(context->active_fingerprint->fingerprint);
      read.verified = context->active_fingerprint->trust != nullptr && context->active_fingerprint->trust[0] != '\0';
    }
    EmitEvent(scope, channel, std::move(read));
  }
  // libotr 4 never calls gone_insecure: the contact ending the session arrives as a TLV.
  if (tlvs != nullptr && otrl_tlv_find(tlvs, OTRL_TLV_DISCONNECTED) != nullptr) {
    scope.stateMayHaveChanged = true;
    EmitStateIfChanged(scope, channel);
    EmitEvent(scope, channel, GoneInsecurePayload{});
  }
  otrl_tlv_free(tlvs);
  if (plain != nullptr) Wipe(plain, std::strlen(plain));
  otrl_message_free(plain);
  if (scope.lostSession) RestartLostSession(scope, channel);
}

void Engine::FinishChannel(CallScope& scope, ChannelRecord& channel) {
  scope.channel = &channel;
  ConnContext* master = MasterFor(channel);
  bool wasEncrypted = false;
  if (master != nullptr) {
    for (ConnContext* c = master; c != nullptr && c->m_context == master; c = c->next) {
      wasEncrypted = wasEncrypted || c->msgstate == OTRL_MSGSTATE_ENCRYPTED;
    }
  }
  otrl_message_disconnect_all_instances(scope.us, ops(), &scope, channel.account.c_str(), channel.protocol.c_str(),
                                        channel.username.c_str());
  if (wasEncrypted) {
    EmitStateIfChanged(scope, channel);
    EmitEvent(scope, channel, GoneInsecurePayload{});
  }
  channel.refreshing = false;
  channel.endedHere = true;  // the user's decision: a message still on its way does not undo it
  // Writes still waiting for an AKE will not go out: say so for each of them.
  while (!channel.held.empty()) {
    EmitEvent(scope, channel, MessageEvent(OTRL_MSGEVENT_CONNECTION_ENDED, channel.held.front()));
    channel.held.pop_front();
  }
}

void Engine::RefreshChannel(CallScope& scope, Batch& result, ChannelRecord& channel) {
  ConnContext* current = SelectedContext(channel);
  if (current != nullptr && current->msgstate == OTRL_MSGSTATE_ENCRYPTED) {
    otrl_context_force_plaintext(current);
    EmitStateIfChanged(scope, channel);
    EmitEvent(scope, channel, GoneInsecurePayload{});
    channel.refreshing = true;  // hold writes: nothing goes out in clear while re-keying
  }
  SendQuery(scope, result, channel);
}

// Once a session is encrypted, the AKE that made it is finished: its DH keys, cipher and MAC
// handles and last message are dead weight (about 12 KB of the 31 KB libotr keeps per secure
// context). Not from inside gone_secure: libotr still sends the AKE's last message after it.
// The protocol version stays, since libotr's fragmenter reads it from there.
static void ReleaseFinishedAke(ConnContext* context) {
  if (context->msgstate != OTRL_MSGSTATE_ENCRYPTED || context->auth.authstate != OTRL_AUTHSTATE_NONE) return;
  const int version = context->auth.protocol_version;
  otrl_auth_clear(&context->auth);
  context->auth.protocol_version = version;
}

void Engine::AfterLibotrCall(CallScope& scope, ChannelRecord& channel) {
  for (ConnContext* context : scope.wentSecure) ReleaseFinishedAke(context);
  scope.wentSecure.clear();
  // Over its budget, a contact's SMP errors are not answered (an abort is a reply).
  if (!scope.overBudget) {
    for (ConnContext* context : scope.smpToAbort) otrl_message_abort_smp(scope.us, ops(), &scope, context);
  }
  scope.smpToAbort.clear();
  scope.overBudget = false;
  for (auto& reply : scope.smpAnswers) {
    const auto* secret = reinterpret_cast<const unsigned char*>(reply.second.data());
    otrl_message_respond_smp(scope.us, ops(), &scope, reply.first, secret, reply.second.size());
    Wipe(reply.second);
  }
  scope.smpAnswers.clear();
  if (!channel.held.empty()) {
    ConnContext* current = SelectedContext(channel);
    if (current != nullptr && current->msgstate == OTRL_MSGSTATE_ENCRYPTED) {
      channel.refreshing = false;
      std::deque<std::string> held;
      held.swap(channel.held);
      scope.stateMayHaveChanged = true;  // JS sees the writes no longer held (flags)
      Batch ignored;
      for (std::string& text : held) {
        SendNow(scope, ignored, channel, text);
        Wipe(text);
      }
      if (!ignored.ok) ReportError(scope, ignored.failure);
    }
  } else if (channel.refreshing) {
    ConnContext* current = SelectedContext(channel);
    if (current != nullptr && current->msgstate == OTRL_MSGSTATE_ENCRYPTED) channel.refreshing = false;
  }
  if (scope.stateMayHaveChanged) EmitStateIfChanged(scope, channel);
  scope.smpUnderway = SmpUnderway(MasterFor(channel));
}

// libotr's poll looks at every contact: the home state holds them all while an instance-wide
// job runs.
void Engine::Poll(CallScope& scope) {
  lenders_.PollWith(us_, [&] { otrl_message_poll(us_, ops(), &scope); });
}

// One channel op, inside WithContact with the contact's contexts in view: one overload per op
// of contract.json (std::visit picks it; an op without one does not compile).
struct ChannelOpHandler {
  Engine& engine;
  CallScope& scope;
  Batch& result;
  ChannelRecord& channel;

  // The selected session, when it is encrypted; else the call fails with ERR_OTR_NOT_PRIVATE.
  ConnContext* Encrypted() {
    ConnContext* current = engine.SelectedContext(channel);
    if (current == nullptr || current->msgstate != OTRL_MSGSTATE_ENCRYPTED) {
      Fail(result, "ERR_OTR_NOT_PRIVATE", "the channel to " + channel.username + " is not encrypted");
      return nullptr;
    }
    return current;
  }

  void operator()(InitArgs&) { engine.SendQuery(scope, result, channel); }

  void operator()(RefreshArgs&) { engine.RefreshChannel(scope, result, channel); }

  void operator()(FinishArgs&) { engine.FinishChannel(scope, channel); }

  void operator()(WriteArgs& args) {
    ConnContext* current = engine.SelectedContext(channel);
    const bool encryptedNow = current != nullptr && current->msgstate == OTRL_MSGSTATE_ENCRYPTED;
    const bool finished = current != nullptr && current->msgstate == OTRL_MSGSTATE_FINISHED;
    const bool mustWait =
        channel.refreshing || (!encryptedNow && !finished && (channel.policy & OTRL_POLICY_REQUIRE_ENCRYPTION) != 0);
    if (!mustWait) return engine.SendNow(scope, result, channel, args.message);
    // Our own queue, not libotr's single resend slot: every held write goes out, in order.
    const bool startAke = channel.held.empty() && !channel.refreshing;
    if (channel.held.empty()) scope.stateMayHaveChanged = true;  // JS sees "writes held" (flags)
    channel.held.push_back(args.message);
    EmitEvent(scope, channel, MessageEvent(OTRL_MSGEVENT_ENCRYPTION_REQUIRED, channel.held.back()));
    if (startAke) engine.SendQuery(scope, result, channel);
  }

  void operator()(ReadArgs& args) { engine.Receive(scope, result, channel, args.message); }

  void operator()(PingArgs&) {}  // done before, with every contact in sight

  // A message JS refused before it came here (too large, NUL): reported in order.
  void operator()(DroppedArgs& args) {
    if (args.event == OTRL_MSGEVENT_RCVDMSG_MALFORMED || args.event == OTRL_MSGEVENT_RCVDMSG_GENERAL_ERR) {
      EmitEvent(scope, channel, MessageEvent(args.event, args.message));
    }
  }

  void operator()(SmpVerifyArgs& args) {
    ConnContext* current = Encrypted();
    if (current == nullptr) return;
    if (args.hasQuestion) {
      otrl_message_initiate_smp_q(scope.us, engine.ops(), &scope, current, args.question.c_str(), Bytes(args.answer),
                                  args.answer.size());
    } else {
      otrl_message_initiate_smp(scope.us, engine.ops(), &scope, current, Bytes(args.answer), args.answer.size());
    }
  }

  void operator()(SmpRespondArgs& args) {
    ConnContext* current = Encrypted();
    if (current != nullptr) {
      otrl_message_respond_smp(scope.us, engine.ops(), &scope, current, Bytes(args.answer), args.answer.size());
    }
  }

  void operator()(SmpAbortArgs&) {
    ConnContext* current = engine.SelectedContext(channel);
    if (current != nullptr) otrl_message_abort_smp(scope.us, engine.ops(), &scope, current);
  }

  void operator()(SymkeyArgs& args) {
    ConnContext* current = Encrypted();
    if (current == nullptr) return;
    if (current->protocol_version < 3) {
      return Fail(result, "ERR_OTR_SYMKEY", "the extra symmetric key needs OTR protocol version 3");
    }
    unsigned char key[OTRL_EXTRAKEY_BYTES];
    const gcry_error_t err = otrl_message_symkey(scope.us, engine.ops(), &scope, current, args.use, Bytes(args.useFor),
                                                 args.useFor.size(), key);
    if (err != 0) {
      Fail(result, "ERR_OTR_SYMKEY", "libotr could not derive the extra symmetric key", err);
    } else {
      result.value.type = ResultValue::Type::Bytes;
      result.value.bytes.assign(reinterpret_cast<const char*>(key), sizeof key);
    }
    explicit_bzero(key, sizeof key);
  }

  void operator()(SetQueryTextArgs& args) {
    channel.customQuery = args.hasQueryText;
    channel.queryText = args.queryText;
  }

  void operator()(SelectSessionArgs& args) {
    const otrl_instag_t wanted = args.instag;
    bool known = wanted >= OTRL_INSTAG_BEST && wanted <= OTRL_INSTAG_RECENT_SENT;
    ConnContext* master = engine.MasterFor(channel);
    for (ConnContext* c = master != nullptr ? master->next : nullptr; !known && c != nullptr && c->m_context == master;
         c = c->next) {
      known = c->their_instance == wanted;
    }
    if (known) channel.selected = wanted;
    result.value.type = ResultValue::Type::Bool;
    result.value.flag = known;
  }
};

void Engine::RunChannelOp(CallScope& scope, Batch& result, uint32_t channelId, ChannelOpCall& call) {
  // Message text, SMP answers, symmetric key purposes: wiped however the call ends.
  struct WipeArgs {
    ChannelOpCall& call;
    ~WipeArgs() {
      std::visit([](auto& args) { args.ForEachSecret([](std::string& text) { Wipe(text); }); }, call);
    }
  } wipe{call};
  ChannelRecord* found = ChannelById(channelId);
  // Its contact was displaced by a rename, or its open was refused (see lib/channel.ts).
  if (found == nullptr) return Fail(result, "ERR_OTR_CLOSED", "the channel is closed");
  ChannelRecord& channel = *found;
  scope.channel = &channel;
  // Only sending and receiving data leave the state alone unless libotr says otherwise.
  scope.stateMayHaveChanged = !std::holds_alternative<WriteArgs>(call) && !std::holds_alternative<ReadArgs>(call);
  // libotr's poll looks at every contact (an instance-wide job); everything else here
  // concerns this one only.
  if (std::holds_alternative<PingArgs>(call)) Poll(scope);
  WithContact(scope, channel.account, channel.protocol, channel.username, [&] {
    std::visit(ChannelOpHandler{*this, scope, result, channel}, call);
    AfterLibotrCall(scope, channel);
  });
}

}  // namespace otr
