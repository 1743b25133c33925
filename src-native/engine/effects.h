// What a libotr call produced, in the order libotr produced it. A job collects these and hands
// them to the JS thread in its batch; see lib/native.ts for the JS side.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "engine/errors.h"
#include "util/wipe.h"

namespace otr {

// Numbers shared with lib/native.ts.
enum class EffectKind : int {
  Write = 1,
  Read = 2,
  GoneSecure = 3,
  GoneInsecure = 4,
  StillSecure = 5,
  NewFingerprint = 6,
  Symkey = 7,
  Timer = 8,
  SmpEvent = 9,
  MsgEvent = 10,
  ContactState = 11,
  AccountReady = 12,
  Error = 13,
  LoadSkipped = 14,  // a line of the fingerprints file skipped at load: a = line, text = why, bytes = copy
  // A session whose fingerprint is not verified went secure on a contact that has a verified
  // one: a = its instance tag, text = the fingerprint (human form).
  UnverifiedInstance = 15,
  // The library started an AKE by itself: the contact wrote into a session this side does not
  // have (restart.cc). a = the instance tag its message came from (0: OTR v2).
  SessionRestart = 16,
  // An AKE message of the contact's reached libotr: init()'s retries wait while one is under way.
  AkeReceived = 17,
};

enum class SessionStatus : int { Unused = 0, NotPrivate = 1, Unverified = 2, Private = 3, Finished = 4 };

struct SessionState {
  uint32_t instag = 0;
  SessionStatus status = SessionStatus::Unused;
  std::string fingerprint;  // 40 hex digits of the fingerprint in use, or empty
};

struct FingerprintState {
  std::string hex;
  std::string trust;
  SessionStatus status = SessionStatus::Unused;
};

// What the contact would lose if it were freed now (lib/otr.ts chooses whom to evict by them).
enum ContactFlag : uint32_t {
  kWasPrivate = 1,    // it had an encrypted session in this process
  kWritesHeld = 2,    // writes wait for an encrypted session
  kRefreshing = 4,    // refresh() is re-keying
  kAkeUnderWay = 8,   // an AKE with it has started (we answered its query, or more)
};

struct ContactState {
  uint64_t contactId = 0;  // the JS Contact it is for; 0: whichever JS has under the name
  uint32_t flags = 0;      // ContactFlag bits
  std::string account, protocol, username;
  std::vector<SessionState> sessions;
  std::vector<FingerprintState> fingerprints;
  uint32_t current = 0;  // the instance tag the channel's selection resolves to
  SessionStatus status = SessionStatus::Unused;
};

struct AccountState {
  std::string name, protocol, fingerprint;
  uint32_t instag = 0;
};

// What each kind of effect carries, one struct per meaning (marshal.cc lays them out for the
// JS dispatcher; see lib/native.ts).
struct NoPayload {};                        // GoneSecure, GoneInsecure
struct WirePayload {                        // Write: a wire message for the transport
  std::string text;
};
struct ReadPayload {                        // Read: what the user is shown
  std::string text;
  bool encrypted = false;                   // libotr decrypted it in this call
  uint32_t instag = 0;                      // the sender's instance tag (0: none)
  std::string fingerprint;                  // hex of the session that decrypted it ('' if none)
  bool verified = false;                    // that fingerprint is trusted
};
struct UnverifiedInstancePayload {
  uint32_t instag = 0;
  std::string human;
};
struct SessionRestartPayload {
  uint32_t instag = 0;
};
struct StillSecurePayload {
  bool isReply = false;
};
struct NewFingerprintPayload {
  std::string human;                        // libotr's human-readable form
  bool seenBefore = false;                  // the contact had other fingerprints
};
struct SymkeyPayload {
  unsigned use = 0;
  std::string useData;
  std::string key;                          // OTRL_EXTRAKEY_BYTES
};
struct TimerPayload {
  unsigned interval = 0;                    // seconds; 0 stops the timer
};
struct SmpPayload {
  int event = 0;                            // OtrlSMPEvent
  unsigned progress = 0;
  bool hasQuestion = false;
  std::string question;
};
struct MessageEventPayload {
  int event = 0;                            // OtrlMessageEvent
  bool hasText = false;
  std::string text;
};
struct ContactStatePayload {
  std::shared_ptr<ContactState> state;
};
struct AccountPayload {
  std::shared_ptr<AccountState> account;
};
struct ErrorPayload {                       // a failure no call waits for
  std::string code, message;
};
struct SkippedLinePayload {                 // a fingerprints-file line skipped at load
  size_t line = 0;
  std::string reason, copy;
};

using Payload = std::variant<NoPayload, WirePayload, ReadPayload, StillSecurePayload, NewFingerprintPayload,
                             SymkeyPayload, TimerPayload, SmpPayload, MessageEventPayload, ContactStatePayload,
                             AccountPayload, ErrorPayload, SkippedLinePayload, UnverifiedInstancePayload,
                             SessionRestartPayload>;

struct Effect {
  EffectKind kind;
  uint32_t channel = 0;
  Payload payload;

  // Bytes of text it carries (what a delivery is capped by).
  size_t TextBytes() const {
    return std::visit(
        [](const auto& p) -> size_t {
          using P = std::decay_t<decltype(p)>;
          if constexpr (std::is_same_v<P, WirePayload> || std::is_same_v<P, ReadPayload> ||
                        std::is_same_v<P, MessageEventPayload>) {
            return p.text.size();
          } else {
            return 0;
          }
        },
        payload);
  }
  // Message text, SMP questions and symmetric keys are wiped before their memory is freed.
  void WipeSecrets() {
    std::visit(
        [](auto& p) {
          using P = std::decay_t<decltype(p)>;
          if constexpr (std::is_same_v<P, WirePayload> || std::is_same_v<P, ReadPayload> ||
                        std::is_same_v<P, MessageEventPayload>) {
            Wipe(p.text);
          } else if constexpr (std::is_same_v<P, SymkeyPayload>) {
            Wipe(p.key);
            Wipe(p.useData);
          } else if constexpr (std::is_same_v<P, SmpPayload>) {
            Wipe(p.question);
          }
        },
        payload);
  }
};

inline Effect MakeEffect(EffectKind kind, uint32_t channel, Payload payload = NoPayload{}) {
  Effect effect{kind, channel, std::move(payload)};
  return effect;
}

// The ops whose value libotr needs before it can go on: the job waits for JS's answer.
enum class QueryKind : int { BeforeEncrypt = 1, AfterDecrypt = 2, IsLoggedIn = 3, ErrorText = 4, SmpSecret = 5 };

struct Query {
  ~Query() {
    Wipe(text);
    Wipe(answer);  // an SMP answer, or converted message text
  }
  QueryKind kind;
  uint32_t channel = 0;
  int64_t code = 0;
  std::string text;
  // Filled on the JS thread under the owner's mutex.
  bool answered = false;
  bool hasString = false;
  std::string answer;
  int64_t number = 1;
};

struct ResultValue {
  enum class Type { None, Bool, Bytes, Account } type = Type::None;
  bool flag = false;
  std::string bytes;
  std::shared_ptr<AccountState> account;
};

struct Batch {
  // Effects carry message text and symmetric keys; once they reached JS they are wiped.
  ~Batch() {
    for (Effect& effect : effects) effect.WipeSecrets();
    Wipe(value.bytes);
  }
  uint32_t job = 0;  // 0: effects no call is waiting for
  bool done = false;
  bool ok = true;
  Failure failure;
  ResultValue value;
  std::vector<Effect> effects;
  std::shared_ptr<Query> query;
};

// What an instance's outbox hands to the JS thread at once: the batches of every job finished
// since the last hand-over (a query, when there is one, is in the last batch).
struct Delivery {
  std::vector<std::unique_ptr<Batch>> batches;
};

}  // namespace otr
