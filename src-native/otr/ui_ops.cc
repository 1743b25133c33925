// libotr's ui_ops, run on a pool thread inside a libotr call. Notifications become
// Effects in the call's scope; the few ops whose value libotr needs ask JS and wait.
// Every op is noexcept and catches everything: nothing may unwind through libotr's C frames.
#include <cstdlib>
#include <cstring>

#include "engine/engine.h"

namespace otr {

namespace {

CallScope* ScopeOf(void* opdata) { return static_cast<CallScope*>(opdata); }

uint32_t ChannelIdFor(CallScope* scope, ConnContext* context) {
  ChannelRecord* channel = scope->engine->ChannelFor(context);
  if (channel == nullptr) channel = scope->channel;
  return channel != nullptr ? channel->id : 0;
}

// For ops that report a change (secure, insecure, fingerprint, SMP result): JS's view of
// the contact is brought up to date first, so c.status inside the callback is the new one.
uint32_t ChannelIdWithState(CallScope* scope, ConnContext* context) {
  scope->stateMayHaveChanged = true;
  ChannelRecord* channel = scope->engine->ChannelFor(context);
  if (channel == nullptr) channel = scope->channel;
  if (channel == nullptr) return 0;
  scope->engine->EmitStateIfChanged(*scope, *channel);
  return channel->id;
}

template <typename P>
void Emit(CallScope* scope, uint32_t channel, P payload) {
  scope->effects.push_back(MakeEffect(channel, std::move(payload)));
}

char* CopyString(const std::string& text) {
  char* copy = static_cast<char*>(std::malloc(text.size() + 1));
  if (copy != nullptr) std::memcpy(copy, text.c_str(), text.size() + 1);
  return copy;
}

OtrlPolicy Policy(void* opdata, ConnContext* context) noexcept {
  try {
    ChannelRecord* channel = ScopeOf(opdata)->engine->ChannelFor(context);
    return channel != nullptr ? channel->policy : OTRL_POLICY_DEFAULT;
  } catch (...) {
    return OTRL_POLICY_DEFAULT;
  }
}

// Never needed: a channel exists only on an account whose key account() generated or the key
// file held. Should libotr ask anyway, it finds no key and fails that step; generating one
// here would hold this instance's queue for the whole key generation.
void CreatePrivkey(void*, const char*, const char*) noexcept {}

int IsLoggedIn(void* opdata, const char* account, const char* protocol, const char* recipient) noexcept {
  try {
    CallScope* scope = ScopeOf(opdata);
    ChannelRecord* channel = scope->engine->ChannelFor(account, protocol, recipient);
    if (channel == nullptr || (channel->callbacks & kHasIsLoggedIn) == 0) return 1;
    auto query = MakeQuery(channel->id, IsLoggedInQuery{});
    if (!scope->engine->Ask(*scope, query) || query->hasString) return 1;
    return static_cast<int>(query->number);
  } catch (...) {
    return 1;
  }
}

void InjectMessage(void* opdata, const char* account, const char* protocol, const char* recipient,
                   const char* message) noexcept {
  try {
    // libotr "sends" an empty string to mean: send nothing.
    if (message == nullptr || message[0] == '\0') return;
    CallScope* scope = ScopeOf(opdata);
    ChannelRecord* channel = scope->engine->ChannelFor(account, protocol, recipient);
    if (channel == nullptr) channel = scope->channel;
    scope->engine->EmitWire(*scope, channel, message);
  } catch (...) {
  }
}

void UpdateContextList(void* opdata) noexcept { ScopeOf(opdata)->stateMayHaveChanged = true; }

void NewFingerprint(void* opdata, OtrlUserState, const char* account, const char* protocol, const char* username,
                    unsigned char fingerprint[20]) noexcept {
  try {
    CallScope* scope = ScopeOf(opdata);
    ConnContext* master = scope->engine->FindMaster(account, protocol, username);
    int known = 0;
    if (master != nullptr) {
      for (Fingerprint* fp = master->fingerprint_root.next; fp != nullptr; fp = fp->next) {
        if (std::memcmp(fp->fingerprint, fingerprint, 20) != 0) ++known;
      }
    }
    char human[OTRL_PRIVKEY_FPRINT_HUMAN_LEN];
    otrl_privkey_hash_to_human(human, fingerprint);
    ChannelRecord* channel = scope->engine->ChannelFor(account, protocol, username);
    scope->stateMayHaveChanged = true;
    if (channel != nullptr) scope->engine->EmitStateIfChanged(*scope, *channel);
    Emit(scope, channel != nullptr ? channel->id : 0, NewFingerprintPayload{human, known > 0});
    scope->fingerprintsChanged = true;
  } catch (...) {
  }
}

void WriteFingerprints(void* opdata) noexcept {
  try {
    ScopeOf(opdata)->stateMayHaveChanged = true;
    ScopeOf(opdata)->fingerprintsChanged = true;
  } catch (...) {
  }
}

void NoteEncrypted(CallScope* scope, ConnContext* context) {
  ChannelRecord* channel = scope->engine->ChannelFor(context);
  if (channel == nullptr) return;
  if (context != context->m_context) channel->lastUse[context] = ++channel->useClock;
  channel->wasPrivate = true;
  channel->queriesAnswered = 0;
  channel->queryUnanswered = false;
}

void GoneSecure(void* opdata, ConnContext* context) noexcept {
  try {
    CallScope* scope = ScopeOf(opdata);
    scope->wentSecure.push_back(context);
    NoteEncrypted(scope, context);
    Emit(scope, ChannelIdWithState(scope, context), GoneSecurePayload{});
    scope->engine->CheckUnverifiedInstance(*scope, context);
  } catch (...) {
  }
}

void GoneInsecure(void* opdata, ConnContext* context) noexcept {
  try {
    CallScope* scope = ScopeOf(opdata);
    Emit(scope, ChannelIdWithState(scope, context), GoneInsecurePayload{});
  } catch (...) {
  }
}

void StillSecure(void* opdata, ConnContext* context, int isReply) noexcept {
  try {
    CallScope* scope = ScopeOf(opdata);
    scope->wentSecure.push_back(context);
    NoteEncrypted(scope, context);
    // A re-AKE the contact started completes here as "still secure" only because we kept the
    // session encrypted through it (stock libotr drops it to plaintext first): the session has
    // new keys, and it is reported as gone secure, which is what stock libotr reports.
    bool rekeyedByContact = false;
    ChannelRecord* channel = scope->engine->ChannelFor(context);
    if (channel != nullptr) {
      auto& rekeyed = channel->rekeyedByContact;
      for (auto it = rekeyed.begin(); it != rekeyed.end(); ++it) {
        if (*it != context) continue;
        rekeyed.erase(it);
        rekeyedByContact = true;
        break;
      }
    }
    if (rekeyedByContact) {
      Emit(scope, ChannelIdWithState(scope, context), GoneSecurePayload{});
    } else {
      Emit(scope, ChannelIdWithState(scope, context), StillSecurePayload{isReply != 0});
    }
    scope->engine->CheckUnverifiedInstance(*scope, context);
  } catch (...) {
  }
}

int MaxMessageSize(void* opdata, ConnContext* context) noexcept {
  try {
    ChannelRecord* channel = ScopeOf(opdata)->engine->ChannelFor(context);
    return channel != nullptr ? channel->maxMessageSize : 0;
  } catch (...) {
    return 0;
  }
}

const char* AccountName(void*, const char* account, const char*) noexcept {
  return account != nullptr ? CopyString(account) : nullptr;
}

void FreeString(void*, const char* text) noexcept { std::free(const_cast<char*>(text)); }

void ReceivedSymkey(void* opdata, ConnContext* context, unsigned int use, const unsigned char* usedata,
                    size_t usedatalen, const unsigned char* symkey) noexcept {
  try {
    CallScope* scope = ScopeOf(opdata);
    SymkeyPayload payload;
    payload.use = use;
    payload.useData.assign(reinterpret_cast<const char*>(usedata), usedatalen);
    payload.key.assign(reinterpret_cast<const char*>(symkey), OTRL_EXTRAKEY_BYTES);
    Emit(scope, ChannelIdFor(scope, context), std::move(payload));
  } catch (...) {
  }
}

const char* DefaultErrorText(OtrlErrorCode code) {
  switch (code) {
    case OTRL_ERRCODE_ENCRYPTION_ERROR:
      return "Error occurred encrypting message.";
    case OTRL_ERRCODE_MSG_NOT_IN_PRIVATE:
      return "You sent encrypted data to a peer who wasn't expecting it.";
    case OTRL_ERRCODE_MSG_UNREADABLE:
      return "You transmitted an unreadable encrypted message.";
    case OTRL_ERRCODE_MSG_MALFORMED:
      return "You transmitted a malformed data message.";
    default:
      return "An OTR error occurred.";
  }
}

const char kNoText[] = "";

// libotr calls strlen() on the result: never return NULL.
const char* ErrorMessage(void* opdata, ConnContext* context, OtrlErrorCode code) noexcept {
  try {
    CallScope* scope = ScopeOf(opdata);
    ChannelRecord* channel = scope->engine->ChannelFor(context);
    if (channel != nullptr && (channel->callbacks & kHasErrorText) != 0) {
      auto query = MakeQuery(channel->id, ErrorTextQuery{code});
      if (scope->engine->Ask(*scope, query) && query->hasString) {
        char* text = CopyString(query->answer);
        if (text != nullptr) return text;
      }
    }
    char* text = CopyString(DefaultErrorText(code));
    return text != nullptr ? text : kNoText;
  } catch (...) {
    return kNoText;
  }
}

void FreeErrorMessage(void*, const char* text) noexcept {
  if (text != kNoText) std::free(const_cast<char*>(text));
}

const char* ResentPrefix(void*, ConnContext*) noexcept { return "[resent]"; }

void FreeResentPrefix(void*, const char*) noexcept {}

void HandleSmpEvent(void* opdata, OtrlSMPEvent event, ConnContext* context, unsigned short progress,
                    char* question) noexcept {
  try {
    CallScope* scope = ScopeOf(opdata);
    // A contact over its budget: the SMP it starts is refused (budget.cc) without a word.
    if (scope->withholdReplies && event == OTRL_SMPEVENT_ERROR) return;
    if (event != OTRL_SMPEVENT_ERROR && event != OTRL_SMPEVENT_ABORT) ++scope->smpSteps;
    Emit(scope, ChannelIdWithState(scope, context),
         SmpEventPayload{event, progress, question != nullptr, question != nullptr ? question : ""});
    if (event == OTRL_SMPEVENT_CHEATED || event == OTRL_SMPEVENT_ERROR) scope->smpToAbort.push_back(context);
    ChannelRecord* channel = scope->engine->ChannelFor(context);
    const bool asked = event == OTRL_SMPEVENT_ASK_FOR_SECRET || event == OTRL_SMPEVENT_ASK_FOR_ANSWER;
    if (asked && channel != nullptr && (channel->callbacks & kHasSmp) != 0) {
      // onSmp's answer is sent within the same read(), so its promise covers the reply.
      auto query = MakeQuery(channel->id, SmpSecretQuery{question != nullptr, question != nullptr ? question : ""});
      if (scope->engine->Ask(*scope, query) && query->hasString) {
        scope->smpAnswers.emplace_back(context, std::move(query->answer));
      }
    }
  } catch (...) {
  }
}

void HandleMsgEvent(void* opdata, OtrlMessageEvent event, ConnContext* context, const char* message,
                    gcry_error_t err) noexcept {
  try {
    CallScope* scope = ScopeOf(opdata);
    const bool aboutTheWrite = event == OTRL_MSGEVENT_ENCRYPTION_REQUIRED || event == OTRL_MSGEVENT_CONNECTION_ENDED;
    if (message == nullptr && aboutTheWrite && scope->sendingText != nullptr) message = scope->sendingText->c_str();
    std::string text;
    if (message != nullptr) text = message;
    if (err != 0 && text.empty()) text = DescribeGcryError(err);
    if (event == OTRL_MSGEVENT_RCVDMSG_NOT_IN_PRIVATE) {
      scope->lostSession = true;
      scope->lostSessionInstag = context != nullptr ? context->their_instance : 0;
    }
    Emit(scope, ChannelIdFor(scope, context), MsgEventPayload{event, message != nullptr || err != 0, std::move(text)});
  } catch (...) {
  }
}

void CreateInstag(void* opdata, const char* account, const char* protocol) noexcept {
  try {
    // Every account has its tag before jobs run (Engine::Load, account()); a lender state
    // must never make one of its own, which the others would not have.
    CallScope* scope = ScopeOf(opdata);
    if (scope->us == scope->engine->home()) scope->engine->GenerateInstag(*scope, account, protocol);
  } catch (...) {
  }
}

void ConvertMessage(void* opdata, ConnContext* context, OtrlConvertType type, char** dest,
                    const char* source) noexcept {
  try {
    *dest = nullptr;
    CallScope* scope = ScopeOf(opdata);
    if (type == OTRL_CONVERT_RECEIVING) scope->decrypted = true;
    ChannelRecord* channel = scope->engine->ChannelFor(context);
    const uint32_t wanted = type == OTRL_CONVERT_SENDING ? kHasBeforeEncrypt : kHasAfterDecrypt;
    if (channel == nullptr || (channel->callbacks & wanted) == 0 || source == nullptr) return;
    auto query = type == OTRL_CONVERT_SENDING ? MakeQuery(channel->id, BeforeEncryptQuery{source})
                                              : MakeQuery(channel->id, AfterDecryptQuery{source});
    if (scope->engine->Ask(*scope, query) && query->hasString && query->answer != source) {
      *dest = CopyString(query->answer);
    }
  } catch (...) {
  }
}

void FreeConverted(void*, ConnContext*, char* dest) noexcept { std::free(dest); }

void TimerControl(void* opdata, unsigned int interval) noexcept {
  try {
    CallScope* scope = ScopeOf(opdata);
    Emit(scope, scope->channel != nullptr ? scope->channel->id : 0, TimerPayload{interval});
  } catch (...) {
  }
}

const OtrlMessageAppOps kOps = {
    Policy,           CreatePrivkey,     IsLoggedIn,       InjectMessage,  UpdateContextList,
    NewFingerprint,   WriteFingerprints, GoneSecure,       GoneInsecure,   StillSecure,
    MaxMessageSize,   AccountName,       FreeString,       ReceivedSymkey, ErrorMessage,
    FreeErrorMessage, ResentPrefix,      FreeResentPrefix, HandleSmpEvent, HandleMsgEvent,
    CreateInstag,     ConvertMessage,    FreeConverted,    TimerControl,
};

}  // namespace

const OtrlMessageAppOps* Engine::ops() const { return &kOps; }

}  // namespace otr
