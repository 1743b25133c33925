// Loading the three files, contacts and their fingerprints, trust, and the contact state
// that JS mirrors (sessions, fingerprints, status).
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "io/files.h"

namespace otr {

namespace {

SessionStatus StatusOf(const ConnContext* context) {
  if (context == nullptr) return SessionStatus::Unused;
  switch (context->msgstate) {
    case OTRL_MSGSTATE_ENCRYPTED:
      return context->active_fingerprint != nullptr && context->active_fingerprint->trust != nullptr &&
                     context->active_fingerprint->trust[0] != '\0'
                 ? SessionStatus::Private
                 : SessionStatus::Unverified;
    case OTRL_MSGSTATE_FINISHED:
      return SessionStatus::Finished;
    default:
      return SessionStatus::NotPrivate;
  }
}

// Child contexts follow their master in libotr's sorted list.
template <typename Visit>
void ForEachInstance(ConnContext* master, Visit visit) {
  for (ConnContext* c = master->next; c != nullptr && c->m_context == master; c = c->next) visit(c);
}

ConnContext* ResolveSelection(ConnContext* master, otrl_instag_t selected) {
  if (master == nullptr) return nullptr;
  if (selected == OTRL_INSTAG_BEST) return otrl_context_find_recent_secure_instance(master);
  if (selected >= OTRL_INSTAG_RECENT && selected <= OTRL_INSTAG_RECENT_SENT) {
    ConnContext* recent = otrl_context_find_recent_instance(master, selected);
    return recent != nullptr ? recent : master;
  }
  ConnContext* found = nullptr;
  ForEachInstance(master, [&](ConnContext* c) {
    if (c->their_instance == selected) found = c;
  });
  return found;
}

void AppendRaw(std::string& out, const void* data, size_t size) { out.append(static_cast<const char*>(data), size); }

void AppendTrust(std::string& out, const Fingerprint* fp) {
  if (fp != nullptr && fp->trust != nullptr) out.append(fp->trust);
  out.push_back('\0');
}

Failure FileFailure(const char* code, const std::string& what) { return MakeFailure(code, what); }

// One of a contact's fingerprints, or null with the call's failure set.
Fingerprint* FindFingerprint(ConnContext* master, const std::string& username, const std::string& hex, Batch& result) {
  unsigned char raw[20];
  Fingerprint* fp = master != nullptr && ParseFingerprintHex(hex, raw)
                        ? otrl_context_find_fingerprint(master, raw, 0, nullptr)
                        : nullptr;
  if (fp == nullptr) {
    result.ok = false;
    result.failure = MakeFailure("ERR_OTR_UNKNOWN_FINGERPRINT", "no such fingerprint for " + username);
  }
  return fp;
}

// libotr keeps contexts in a list sorted by (username, account, protocol) and finds each
// line's context by walking it from the head: in file order, loading n contacts costs n²/2
// string compares (1.7 s for 10,000). Fed in descending order, every new context belongs at
// the head and the walk stops at once. A tab sorts below any name character, so comparing
// whole lines compares those fields in order.
std::string NewestContactFirst(const std::string& bytes) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < bytes.size()) {
    size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    if (end > start) lines.emplace_back(bytes, start, end - start);
    start = end + 1;
  }
  std::sort(lines.begin(), lines.end(), std::greater<std::string>());
  std::string ordered;
  ordered.reserve(bytes.size() + 1);
  for (const std::string& line : lines) ordered.append(line).push_back('\n');
  return ordered;
}

}  // namespace

std::string FingerprintHex(const unsigned char* fingerprint) {
  static const char kDigits[] = "0123456789abcdef";
  std::string hex(40, '0');
  for (int i = 0; i < 20; ++i) {
    hex[2 * i] = kDigits[fingerprint[i] >> 4];
    hex[2 * i + 1] = kDigits[fingerprint[i] & 0x0f];
  }
  return hex;
}

bool ParseFingerprintHex(const std::string& hex, unsigned char out[20]) {
  if (hex.size() != 40) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (int i = 0; i < 20; ++i) {
    const int high = nibble(hex[2 * i]);
    const int low = nibble(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<unsigned char>(high << 4 | low);
  }
  return true;
}

void Engine::Load(CallScope& scope, Batch& result, FilePaths paths) {
  paths_ = std::move(paths);
  trust_ = std::make_unique<FileTrustStore>(paths_.fingerprints);
  for (const std::string* path : {&paths_.privkeys, &paths_.fingerprints, &paths_.instags}) {
    RemoveStaleTempFiles(*path);
  }
  auto fail = [&](Failure failure) {
    result.ok = false;
    result.failure = std::move(failure);
  };

  // libotr reads the key from the one descriptor the checks were made on.
  const FileContent keys = OpenForReading(paths_.privkeys);
  if (!keys.error.empty()) return fail(FileFailure("ERR_OTR_PRIVKEY_FILE", keys.error));
  if (keys.exists) {
    FILE* file = ::fdopen(keys.fd, "rb");
    if (file == nullptr) ::close(keys.fd);
    const std::string unsafe = UnsafeKeyFile(paths_.privkeys, keys);
    std::string refused = !unsafe.empty()   ? unsafe
                          : keys.size == 0  ? paths_.privkeys + " is empty: refusing to replace an identity"
                          : file == nullptr ? "cannot read " + paths_.privkeys
                                            : std::string();
    if (!refused.empty()) {
      if (file != nullptr) std::fclose(file);
      return fail(FileFailure("ERR_OTR_PRIVKEY_FILE", refused));
    }
    const gcry_error_t err = otrl_privkey_read_FILEp(us_, file);
    std::fclose(file);
    if (err != 0) {
      return fail(MakeFailure("ERR_OTR_PRIVKEY_FILE", paths_.privkeys + " is not a libotr private key file", err));
    }
  }

  const FileContent instags = ReadWholeFile(paths_.instags);
  // A line planted in either file would pick our instance tag or mark a key verified.
  const std::string instagsRefused = !instags.error.empty() ? instags.error
                                     : instags.exists       ? UnsafeSharedFile(paths_.instags, instags)
                                                            : std::string();
  if (!instagsRefused.empty()) return fail(FileFailure("ERR_OTR_INSTAG_FILE", instagsRefused));
  if (!instags.bytes.empty()) {
    const std::string complaint = CheckInstagsFormat(instags.bytes);
    if (!complaint.empty()) return fail(FileFailure("ERR_OTR_INSTAG_FILE", paths_.instags + ", " + complaint));
    FILE* file = fmemopen(const_cast<char*>(instags.bytes.data()), instags.bytes.size(), "r");
    if (file == nullptr) return fail(FileFailure("ERR_OTR_INSTAG_FILE", "cannot read " + paths_.instags));
    const gcry_error_t err = otrl_instag_read_FILEp(us_, file);
    std::fclose(file);
    if (err != 0) return fail(MakeFailure("ERR_OTR_INSTAG_FILE", "cannot load " + paths_.instags, err));
  }

  const FileContent trust = ReadWholeFile(paths_.fingerprints);
  const std::string trustRefused = !trust.error.empty() ? trust.error
                                   : trust.exists       ? UnsafeSharedFile(paths_.fingerprints, trust)
                                                        : std::string();
  if (!trustRefused.empty()) return fail(FileFailure("ERR_OTR_FINGERPRINTS_FILE", trustRefused));
  if (!trust.bytes.empty()) {
    std::vector<SkippedLine> skipped;
    const std::string good = WellFormedFingerprints(trust.bytes, skipped);
    if (!skipped.empty()) {
      // The file will be rewritten without those lines: the original is kept first.
      std::string copy;
      const std::string why = KeepCopy(paths_.fingerprints, trust.bytes, &copy);
      if (!why.empty()) {
        return fail(FileFailure("ERR_OTR_FINGERPRINTS_FILE",
                                paths_.fingerprints + " has lines libotr cannot read, and " + why));
      }
      for (const SkippedLine& line : skipped) {
        scope.effects.push_back(MakeEffect(0, LoadSkippedPayload{line.line, line.reason, copy}));
      }
      trust_->MarkDirty();  // written back without them once no job waits to start
    }
    trust_->LoadRows(good);
    std::string ordered = NewestContactFirst(good);
    FILE* file = fmemopen(const_cast<char*>(ordered.data()), ordered.size(), "r");
    if (file == nullptr) return fail(FileFailure("ERR_OTR_FINGERPRINTS_FILE", "cannot read " + paths_.fingerprints));
    const gcry_error_t err = otrl_privkey_read_fingerprints_FILEp(us_, file, nullptr, nullptr);
    std::fclose(file);
    if (err != 0) {
      return fail(MakeFailure("ERR_OTR_FINGERPRINTS_FILE", "cannot load " + paths_.fingerprints, err));
    }
  }

  RefreshKeyMaterial();
  NoteMissingInstags();
  for (OtrlPrivKey* key = us_->privkey_root; key != nullptr; key = key->next) EmitAccount(scope, key);
  for (ConnContext* c = us_->context_root; c != nullptr; c = c->next) {
    if (c->m_context != c) continue;
    index_.AddMaster(ChannelKey(c->accountname, c->protocol, c->username), c);
    EmitContactState(scope, c, nullptr);
  }
}

bool Engine::Resolve(uint64_t contactId, const std::string& account, const std::string& protocol,
                     const std::string& username, ContactRef& ref) {
  std::string key = ChannelKey(account, protocol, username);
  if (contactId != 0) {
    key = index_.Bind(contactId, key);
    if (key.empty()) return false;
  }
  const size_t first = key.find('\0');
  const size_t second = key.find('\0', first + 1);
  ref.account = key.substr(0, first);
  ref.protocol = key.substr(first + 1, second - first - 1);
  ref.username = key.substr(second + 1);
  ref.key = std::move(key);
  return true;
}

bool Engine::ResolveOrFail(uint64_t contactId, const std::string& account, const std::string& protocol,
                           const std::string& username, ContactRef& ref, Batch& result) {
  if (Resolve(contactId, account, protocol, username, ref)) return true;
  result.ok = false;
  result.failure = MakeFailure("ERR_OTR_CONTACT_EXISTS", username + " is another contact of " + account +
                                                             " now (this one was forgotten or renamed away)");
  return false;
}

void Engine::AddContact(CallScope& scope, Batch& result, uint64_t contactId, std::string account, std::string protocol,
                        std::string username, std::string fingerprintHex, bool verified) {
  ContactRef ref;
  if (!ResolveOrFail(contactId, account, protocol, username, ref, result)) return;
  account = ref.account;
  protocol = ref.protocol;
  username = ref.username;
  ChannelRecord* channel = ChannelFor(account.c_str(), protocol.c_str(), username.c_str());
  if (fingerprintHex.empty()) {
    ConnContext* master = FindMaster(account, protocol, username);
    if (master != nullptr) EmitContactState(scope, master, channel);
    return;
  }
  unsigned char raw[20];
  if (!ParseFingerprintHex(fingerprintHex, raw)) {
    result.ok = false;
    result.failure = MakeFailure("ERR_OTR_BAD_FINGERPRINT", "not a fingerprint: " + fingerprintHex);
    return;
  }
  ConnContext* master = nullptr;
  WithContact(scope, account, protocol, username, [&] {
    master = otrl_context_find(scope.us, username.c_str(), account.c_str(), protocol.c_str(), OTRL_INSTAG_MASTER, 1,
                               nullptr, nullptr, nullptr);
  });
  int added = 0;
  Fingerprint* fp = master != nullptr ? otrl_context_find_fingerprint(master, raw, 1, &added) : nullptr;
  if (fp == nullptr) {
    result.ok = false;
    result.failure = MakeFailure("ERR_OTR_INTERNAL", "libotr could not add the fingerprint");
    return;
  }
  if (verified && (fp->trust == nullptr || fp->trust[0] == '\0')) otrl_context_set_trust(fp, "verified");
  SyncTrustRows(master);
  if (added != 0 || verified) PersistFingerprints(result);
  EmitContactState(scope, master, channel);
}

void Engine::SetTrust(CallScope& scope, Batch& result, uint64_t contactId, std::string account, std::string protocol,
                      std::string username, std::string fingerprintHex, bool verified) {
  ContactRef ref;
  if (!ResolveOrFail(contactId, account, protocol, username, ref, result)) return;
  account = ref.account;
  protocol = ref.protocol;
  username = ref.username;
  ConnContext* master = FindMaster(account, protocol, username);
  Fingerprint* fp = FindFingerprint(master, username, fingerprintHex, result);
  if (fp == nullptr) return;
  if (!verified) {
    otrl_context_set_trust(fp, nullptr);
  } else if (fp->trust == nullptr || fp->trust[0] == '\0') {
    otrl_context_set_trust(fp, "verified");
  }
  SyncTrustRows(master);
  PersistFingerprints(result);
  result.value.type = ResultValue::Type::Bool;
  result.value.flag = verified;
  EmitContactState(scope, master, ChannelFor(account.c_str(), protocol.c_str(), username.c_str()));
}

void Engine::ForgetFingerprint(CallScope& scope, Batch& result, uint64_t contactId, std::string account,
                               std::string protocol, std::string username, std::string fingerprintHex) {
  ContactRef ref;
  if (!ResolveOrFail(contactId, account, protocol, username, ref, result)) return;
  account = ref.account;
  protocol = ref.protocol;
  username = ref.username;
  ConnContext* master = FindMaster(account, protocol, username);
  Fingerprint* fp = FindFingerprint(master, username, fingerprintHex, result);
  if (fp == nullptr) return;
  bool inUse = master->active_fingerprint == fp;
  ForEachInstance(master, [&](ConnContext* c) { inUse = inUse || c->active_fingerprint == fp; });
  if (inUse) {
    result.ok = false;
    result.failure =
        MakeFailure("ERR_OTR_FINGERPRINT_IN_USE", "the fingerprint is in use by a session; finish it first");
    return;
  }
  // Never forget the context itself: channels and app_data point at it.
  otrl_context_forget_fingerprint(fp, 0);
  SyncTrustRows(master);
  PersistFingerprints(result);
  EmitContactState(scope, master, ChannelFor(account.c_str(), protocol.c_str(), username.c_str()));
}

ConnContext* Engine::MasterFor(ChannelRecord& channel) {
  if (channel.master == nullptr) channel.master = FindMaster(channel.account, channel.protocol, channel.username);
  return channel.master;
}

ConnContext* Engine::FindMaster(const std::string& account, const std::string& protocol, const std::string& username) {
  const std::string& key = LookupKey(account, protocol, username);
  if (ConnContext* master = index_.Master(key)) return master;
  // Created by libotr in the call running now, under a view of this contact (on this thread).
  ConnContext* head = tViewing != nullptr ? tViewing->context_root : nullptr;
  if (head != nullptr && username == head->username && account == head->accountname && protocol == head->protocol) {
    index_.AddMaster(key, head);
    return head;
  }
  return nullptr;
}

ConnContext* Engine::SelectedContext(ChannelRecord& channel) {
  return ResolveSelection(MasterFor(channel), channel.selected);
}

// Everything ContactState shows, by content: instance tags, message states, fingerprint bytes
// and trust. Never addresses: a context or fingerprint freed and another allocated at the
// same address would otherwise look unchanged.
void Engine::SignatureOf(std::string& signature, ConnContext* master, otrl_instag_t selected, uint32_t flags) {
  signature.clear();
  if (master == nullptr) return;
  AppendRaw(signature, &flags, sizeof flags);
  AppendRaw(signature, &selected, sizeof selected);
  const ConnContext* current = ResolveSelection(master, selected);
  const otrl_instag_t currentTag = current != nullptr ? current->their_instance : 0;
  const int currentState = current != nullptr ? static_cast<int>(current->msgstate) : -1;
  AppendRaw(signature, &currentTag, sizeof currentTag);
  AppendRaw(signature, &currentState, sizeof currentState);
  auto addFingerprint = [&](const Fingerprint* fp) {
    if (fp == nullptr || fp->fingerprint == nullptr) {
      signature.push_back('-');
      return;
    }
    signature.push_back('+');
    AppendRaw(signature, fp->fingerprint, 20);
    AppendTrust(signature, fp);
  };
  auto addContext = [&](const ConnContext* c) {
    AppendRaw(signature, &c->their_instance, sizeof c->their_instance);
    AppendRaw(signature, &c->msgstate, sizeof c->msgstate);
    addFingerprint(c->active_fingerprint);
  };
  addContext(master);
  ForEachInstance(master, addContext);
  signature.push_back('|');
  for (const Fingerprint* fp = master->fingerprint_root.next; fp != nullptr; fp = fp->next) addFingerprint(fp);
}

uint32_t Engine::FlagsOf(ConnContext* master, const ChannelRecord* channel) {
  uint32_t flags = 0;
  for (ConnContext* c = master; c != nullptr && c->m_context == master; c = c->next) {
    if (c->auth.authstate != OTRL_AUTHSTATE_NONE) flags |= kAkeUnderWay;
  }
  if (channel != nullptr) {
    if (channel->wasPrivate) flags |= kWasPrivate;
    if (!channel->held.empty()) flags |= kWritesHeld;
    if (channel->refreshing) flags |= kRefreshing;
  }
  return flags;
}

void Engine::EmitStateIfChanged(CallScope& scope, ChannelRecord& channel) {
  ConnContext* master = MasterFor(channel);
  if (master == nullptr) return;
  // Checked after every message: built in a buffer this thread keeps (no allocation per message).
  thread_local std::string signature;
  SignatureOf(signature, master, channel.selected, FlagsOf(master, &channel));
  if (signature == channel.lastSignature) return;
  EmitContactState(scope, master, &channel);
}

void Engine::EmitContactGone(CallScope& scope, const ContactRef& ref, uint64_t contactId) {
  auto state = std::make_shared<ContactState>();
  state->contactId = contactId;
  state->account = ref.account;
  state->protocol = ref.protocol;
  state->username = ref.username;
  scope.effects.push_back(MakeEffect(0, ContactStatePayload{std::move(state)}));
}

void Engine::CheckUnverifiedInstance(CallScope& scope, ConnContext* context) {
  if (context == nullptr || context->active_fingerprint == nullptr ||
      context->active_fingerprint->fingerprint == nullptr) {
    return;
  }
  const Fingerprint* active = context->active_fingerprint;
  if (active->trust != nullptr && active->trust[0] != '\0') return;
  ConnContext* master = context->m_context;
  bool verifiedOther = false;
  for (const Fingerprint* fp = master->fingerprint_root.next; fp != nullptr; fp = fp->next) {
    verifiedOther = verifiedOther || (fp != active && fp->trust != nullptr && fp->trust[0] != '\0');
  }
  if (!verifiedOther) return;
  ChannelRecord* channel = ChannelFor(context);
  if (channel == nullptr) channel = scope.channel;
  char human[OTRL_PRIVKEY_FPRINT_HUMAN_LEN];
  otrl_privkey_hash_to_human(human, active->fingerprint);
  scope.effects.push_back(
      MakeEffect(channel != nullptr ? channel->id : 0, UnverifiedInstancePayload{context->their_instance, human}));
}

void Engine::EmitContactState(CallScope& scope, ConnContext* master, ChannelRecord* channel, uint64_t contactId) {
  auto state = std::make_shared<ContactState>();
  state->contactId = contactId != kBoundContact
                         ? contactId
                         : index_.IdOf(ChannelKey(master->accountname, master->protocol, master->username));
  state->flags = FlagsOf(master, channel);
  state->account = master->accountname;
  state->protocol = master->protocol;
  state->username = master->username;
  auto addSession = [&](const ConnContext* c) {
    SessionState session;
    session.instag = c->their_instance;
    session.status = StatusOf(c);
    if (c->active_fingerprint != nullptr && c->active_fingerprint->fingerprint != nullptr) {
      session.fingerprint = FingerprintHex(c->active_fingerprint->fingerprint);
    }
    state->sessions.push_back(std::move(session));
  };
  ForEachInstance(master, addSession);
  if (state->sessions.empty() && master->msgstate != OTRL_MSGSTATE_PLAINTEXT) addSession(master);
  for (const Fingerprint* fp = master->fingerprint_root.next; fp != nullptr; fp = fp->next) {
    FingerprintState entry;
    entry.hex = FingerprintHex(fp->fingerprint);
    if (fp->trust != nullptr) entry.trust = fp->trust;
    for (const SessionState& session : state->sessions) {
      if (session.fingerprint == entry.hex) entry.status = session.status;
    }
    state->fingerprints.push_back(std::move(entry));
  }
  const otrl_instag_t selected = channel != nullptr ? channel->selected : OTRL_INSTAG_BEST;
  const ConnContext* current = ResolveSelection(master, selected);
  state->current = current != nullptr ? current->their_instance : 0;
  state->status = StatusOf(current);
  if (channel != nullptr) {
    SignatureOf(channel->lastSignature, master, selected, state->flags);
    uint32_t live = 0;
    for (const SessionState& session : state->sessions) {
      live += session.status == SessionStatus::Private || session.status == SessionStatus::Unverified ? 1 : 0;
    }
    sessions_.fetch_add(live, std::memory_order_relaxed);
    sessions_.fetch_sub(channel->liveSessions, std::memory_order_relaxed);
    channel->liveSessions = live;
  }

  scope.effects.push_back(MakeEffect(channel != nullptr ? channel->id : 0, ContactStatePayload{std::move(state)}));
}

}  // namespace otr
