// Loading the three files, contacts and their fingerprints, trust, and the contact state
// that JS mirrors (sessions, fingerprints, status).
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>
#include <utility>

#include "engine.h"
#include "files.h"

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

void AppendRaw(std::string& out, const void* data, size_t size) {
  out.append(static_cast<const char*>(data), size);
}

void AppendTrust(std::string& out, const Fingerprint* fp) {
  if (fp != nullptr && fp->trust != nullptr) out.append(fp->trust);
  out.push_back('\0');
}

Failure FileFailure(const char* code, const std::string& what) { return MakeFailure(code, what); }

// One of a contact's fingerprints, or null with the call's failure set.
Fingerprint* FindFingerprint(ConnContext* master, const std::string& username, const std::string& hex,
                             Batch& result) {
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
    std::string refused = !unsafe.empty() ? unsafe
                          : keys.size == 0 ? paths_.privkeys + " is empty: refusing to replace an identity"
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
  if (!instags.error.empty()) return fail(FileFailure("ERR_OTR_INSTAG_FILE", instags.error));
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
  if (!trust.error.empty()) return fail(FileFailure("ERR_OTR_FINGERPRINTS_FILE", trust.error));
  if (!trust.bytes.empty()) {
    std::vector<SkippedLine> skipped;
    const std::string good = WellFormedFingerprints(trust.bytes, skipped);
    if (!skipped.empty()) {
      // The file will be rewritten without those lines: the original is kept first.
      std::string copy;
      const std::string why = KeepCopy(paths_.fingerprints, trust.bytes, &copy);
      if (!why.empty()) {
        return fail(FileFailure("ERR_OTR_FINGERPRINTS_FILE", paths_.fingerprints + " has lines libotr cannot read, and " + why));
      }
      for (const SkippedLine& line : skipped) {
        scope.effects.push_back(MakeEffect(EffectKind::LoadSkipped, 0, SkippedLinePayload{line.line, line.reason, copy}));
      }
      trust_->MarkDirty();  // written back without them once the worker is idle
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

void Engine::AddContact(CallScope& scope, Batch& result, std::string account, std::string protocol,
                        std::string username, std::string fingerprintHex, bool verified) {
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

void Engine::SetTrust(CallScope& scope, Batch& result, std::string account, std::string protocol,
                      std::string username, std::string fingerprintHex, bool verified) {
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

void Engine::ForgetFingerprint(CallScope& scope, Batch& result, std::string account, std::string protocol,
                               std::string username, std::string fingerprintHex) {
  ConnContext* master = FindMaster(account, protocol, username);
  Fingerprint* fp = FindFingerprint(master, username, fingerprintHex, result);
  if (fp == nullptr) return;
  bool inUse = master->active_fingerprint == fp;
  ForEachInstance(master, [&](ConnContext* c) { inUse = inUse || c->active_fingerprint == fp; });
  if (inUse) {
    result.ok = false;
    result.failure = MakeFailure("ERR_OTR_FINGERPRINT_IN_USE", "the fingerprint is in use by a session; finish it first");
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
  const std::string key = ChannelKey(account, protocol, username);
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
std::string Engine::SignatureOf(ConnContext* master, otrl_instag_t selected) {
  std::string signature;
  if (master == nullptr) return signature;
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
  return signature;
}

void Engine::EmitStateIfChanged(CallScope& scope, ChannelRecord& channel) {
  ConnContext* master = MasterFor(channel);
  if (master == nullptr) return;
  if (SignatureOf(master, channel.selected) == channel.lastSignature) return;
  EmitContactState(scope, master, &channel);
}

void Engine::EmitContactState(CallScope& scope, ConnContext* master, ChannelRecord* channel) {
  auto state = std::make_shared<ContactState>();
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
    channel->lastSignature = SignatureOf(master, selected);
    uint32_t live = 0;
    for (const SessionState& session : state->sessions) {
      live += session.status == SessionStatus::Private || session.status == SessionStatus::Unverified ? 1 : 0;
    }
    sessions_.fetch_add(live, std::memory_order_relaxed);
    sessions_.fetch_sub(channel->liveSessions, std::memory_order_relaxed);
    channel->liveSessions = live;
  }

  scope.effects.push_back(
      MakeEffect(EffectKind::ContactState, channel != nullptr ? channel->id : 0, ContactStatePayload{std::move(state)}));
}

}  // namespace otr

namespace otr {

// libotr keys a contact's contexts by username, so a nick change would start over with no
// session and no trust. Renaming the contexts in place keeps both: the sessions (master and
// instances), their keys and the fingerprints move to the new name, and the fingerprints
// file is rewritten (atomically) under it. libotr 4.x allocates `username` with strdup and
// frees it with free() (context.c), which is what makes replacing it safe.
static_assert(OTRL_VERSION_MAJOR == 4, "contact renaming replaces ConnContext::username as libotr 4 allocates it");

void Engine::RenameContact(CallScope& scope, Batch& result, std::string account, std::string protocol,
                           std::string from, std::string to) {
  if (FindMaster(account, protocol, to) != nullptr || ChannelFor(account.c_str(), protocol.c_str(), to.c_str()) != nullptr) {
    result.ok = false;
    result.failure = MakeFailure("ERR_OTR_CONTACT_EXISTS", to + " is already a contact of " + account +
                                                               ": forget it first, or rename it away");
    return;
  }
  ConnContext* master = FindMaster(account, protocol, from);
  if (master != nullptr) {
    // Allocate first, then swap, so a failure leaves every context under one name.
    std::vector<ConnContext*> contexts{master};
    ForEachInstance(master, [&](ConnContext* c) { contexts.push_back(c); });
    std::vector<char*> names;
    for (size_t i = 0; i < contexts.size(); ++i) {
      char* name = strdup(to.c_str());
      if (name == nullptr) {
        for (char* n : names) std::free(n);
        result.ok = false;
        result.failure = MakeFailure("ERR_OTR_INTERNAL", "out of memory renaming " + from);
        return;
      }
      names.push_back(name);
    }
    for (size_t i = 0; i < contexts.size(); ++i) {
      std::free(contexts[i]->username);
      contexts[i]->username = names[i];
    }
    index_.RenameMaster(ChannelKey(account, protocol, from), ChannelKey(account, protocol, to), master);
  }
  ChannelRecord* channel = index_.RenameChannel(ChannelKey(account, protocol, from), ChannelKey(account, protocol, to), to);
  if (master == nullptr) return;
  trust_->Rename(ContactName{account, protocol, from}, ContactName{account, protocol, to});
  if (master->fingerprint_root.next != nullptr) PersistFingerprints(result);
  EmitContactState(scope, master, channel);
}

}  // namespace otr
