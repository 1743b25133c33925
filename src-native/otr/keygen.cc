// Accounts: DSA key generation split so the slow part never holds up the instance's jobs, keys
// written atomically (mode 0600), and an instance tag for every account.
#include <pthread.h>
#include <unistd.h>

#include <utility>

#include "engine/engine.h"
#include "io/files.h"

namespace otr {

namespace {

std::shared_ptr<AccountState> DescribeAccount(OtrlUserState us, const char* name, const char* protocol) {
  auto account = std::make_shared<AccountState>();
  account->name = name;
  account->protocol = protocol;
  char human[OTRL_PRIVKEY_FPRINT_HUMAN_LEN];
  if (otrl_privkey_fingerprint(us, human, name, protocol) != nullptr) account->fingerprint = human;
  OtrlInsTag* instag = otrl_instag_find(us, name, protocol);
  if (instag != nullptr) account->instag = instag->instag;
  return account;
}

}  // namespace

void Engine::EmitAccount(CallScope& scope, OtrlPrivKey* key) {
  scope.effects.push_back(MakeEffect(0, AccountReadyPayload{DescribeAccount(us_, key->accountname, key->protocol)}));
}

void Engine::EnsureAccount(CallScope& scope, Batch& result, std::string name, std::string protocol) {
  if (otrl_privkey_find(us_, name.c_str(), protocol.c_str()) != nullptr) {
    if (otrl_instag_find(us_, name.c_str(), protocol.c_str()) == nullptr) {
      GenerateInstag(scope, name.c_str(), protocol.c_str());
    }
    result.value.type = ResultValue::Type::Account;
    result.value.account = DescribeAccount(us_, name.c_str(), protocol.c_str());
    return;
  }
  const std::string key = ChannelKey(name, protocol, std::string());
  auto pending = keygens_.find(key);
  if (pending != keygens_.end()) {
    pending->second->waiters.push_back(scope.job);
    scope.deferred = true;
    return;
  }
  void* newkey = nullptr;
  const gcry_error_t err = otrl_privkey_generate_start(us_, name.c_str(), protocol.c_str(), &newkey);
  if (err != 0 || newkey == nullptr) {
    result.ok = false;
    result.failure = MakeFailure("ERR_OTR_KEYGEN", "cannot start generating a key for " + name, err);
    return;
  }
  auto generation = std::make_unique<PendingKeygen>();
  PendingKeygen* raw = generation.get();
  raw->account = std::move(name);
  raw->protocol = std::move(protocol);
  raw->newkey = newkey;
  raw->waiters.push_back(scope.job);
  keygens_[key] = std::move(generation);
  raw->thread = std::thread([this, raw, key] {
    pthread_setname_np(pthread_self(), "protocol-otr-kg");  // see Engine::Start
    raw->error = otrl_privkey_generate_calculate(raw->newkey);
    Job finish;
    finish.run = [key](Engine& engine, CallScope& s, Batch&) { engine.FinishKeygen(s, key); };
    Enqueue(std::move(finish));
  });
  scope.deferred = true;
}

Failure Engine::StoreNewKey(void* newkey) {
  gcry_error_t finishError = 0;
  const std::string why = WriteFileAtomically(paths_.privkeys, 0600, [&](FILE* file) {
    finishError = otrl_privkey_generate_finish_FILEp(us_, newkey, file);  // frees newkey
    newkey = nullptr;
    return finishError == 0;
  });
  if (newkey != nullptr) otrl_privkey_generate_cancelled(us_, newkey);
  if (why.empty() && finishError == 0) {
    RefreshKeyMaterial();
    return Failure();
  }
  // finish re-reads the keys from what it wrote: restore them from the intact file.
  ReloadPrivkeys();
  if (!why.empty()) return MakeFailure("ERR_OTR_FILE_WRITE", why);
  return MakeFailure("ERR_OTR_KEYGEN", "cannot store the new key", finishError);
}

void Engine::ReloadPrivkeys() {
  const FileContent keys = OpenForReading(paths_.privkeys);
  FILE* file = keys.fd >= 0 ? ::fdopen(keys.fd, "rb") : nullptr;
  if (file == nullptr && keys.fd >= 0) ::close(keys.fd);
  if (file == nullptr) {
    otrl_privkey_forget_all(us_);
    return;
  }
  otrl_privkey_read_FILEp(us_, file);
  std::fclose(file);
  RefreshKeyMaterial();
}

void Engine::FinishKeygen(CallScope& scope, std::string key) {
  auto found = keygens_.find(key);
  if (found == keygens_.end()) return;
  std::unique_ptr<PendingKeygen> generation = std::move(found->second);
  keygens_.erase(found);
  generation->thread.join();

  Batch outcome;
  if (generation->error != 0) {
    otrl_privkey_generate_cancelled(us_, generation->newkey);
    outcome.ok = false;
    outcome.failure = MakeFailure("ERR_OTR_KEYGEN", "key generation failed", generation->error);
  } else {
    Failure failure = StoreNewKey(generation->newkey);
    if (!failure.code.empty()) {
      outcome.ok = false;
      outcome.failure = std::move(failure);
    } else {
      const char* name = generation->account.c_str();
      const char* protocol = generation->protocol.c_str();
      if (otrl_instag_find(us_, name, protocol) == nullptr) GenerateInstag(scope, name, protocol);
      outcome.value.type = ResultValue::Type::Account;
      outcome.value.account = DescribeAccount(us_, name, protocol);
    }
  }
  for (uint32_t waiter : generation->waiters) {
    auto* batch = new Batch(outcome);
    batch->job = waiter;
    batch->done = true;
    outbox_.Add(batch);
  }
}

void Engine::GenerateInstag(CallScope& scope, const char* account, const char* protocol) {
  gcry_error_t generateError = 0;
  const std::string why = WriteFileAtomically(paths_.instags, 0600, [&](FILE* file) {
    generateError = otrl_instag_generate_FILEp(us_, file, account, protocol);
    return generateError == 0;
  });
  if (!why.empty()) ReportError(scope, MakeFailure("ERR_OTR_FILE_WRITE", why, generateError));
  RefreshKeyMaterial();
  NoteMissingInstags();
  // JS shows the account's instance tag (an account loaded from a key file without one had 0).
  if (OtrlPrivKey* key = otrl_privkey_find(us_, account, protocol)) EmitAccount(scope, key);
}

// Lenders load the instance tags the home state has and must never make one of their own
// (the others would not have it): while a key has no tag, channels open as instance-wide
// jobs, on the home state, which makes the tag (OpenChannel).
void Engine::NoteMissingInstags() {
  bool missing = false;
  for (OtrlPrivKey* key = us_->privkey_root; key != nullptr && !missing; key = key->next) {
    missing = otrl_instag_find(us_, key->accountname, key->protocol) == nullptr;
  }
  missingInstags_.store(missing, std::memory_order_release);
}

void Engine::StopKeygens() {
  for (auto& entry : keygens_) {
    PendingKeygen& generation = *entry.second;
    if (generation.thread.joinable()) generation.thread.join();
    if (us_ != nullptr) otrl_privkey_generate_cancelled(us_, generation.newkey);
  }
  keygens_.clear();
}

}  // namespace otr
