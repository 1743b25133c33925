// libFuzzer harness for the addon's receive path: Engine::RunChannelOp(..., ReadArgs{text})
// -> Engine::Receive -> otrl_message_receiving -> the project's ui_ops (src-native/).
//
// Two in-memory parties (Alice and Bob, each an otr::Engine run on its home OtrlUserState, loaded
// from the committed throwaway keys in test/fuzz/keys/) establish an encrypted v3 session once.
// Every fuzz input is then read by Bob's channel as if Alice had sent it. Every
// kCheckEvery inputs, and at exit, a fresh data message is sent each way and must decrypt:
// a session that stops working is reported as a crash (abort).
//
// The harness calls the Engine's job functions directly on the fuzzing thread, as a pool
// thread does (Engine::Execute); the Engine is never started, so no job goes through the
// pool and no thread handoff happens per input. Channel callbacks flags are 0: no blocking
// query (Ask) is ever made. Batches the Engine would post (there are none without jobs) are
// deleted by the Poster.
//
// A custom mutator also mutates the *decoded* bytes of "?OTR:<base64>." messages and
// re-encodes them, so mutations reach libotr's binary parsers instead of only its base64
// decoder.
//
// Build and run: scripts/fuzz.sh [seconds]  (see docs/RELIABILITY.md).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "otr/init.h"

extern "C" {
#include <libotr/b64.h>
}

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t maxSize);

namespace {

constexpr uint32_t kChannel = 1;
unsigned long checkEvery = 2000;  // OTR_FUZZ_CHECK_EVERY overrides (1: after every input)
const char kAlice[] = "alice@example.org";
const char kBob[] = "bob@example.org";
const char kProtocol[] = "prpl-jabber";

#ifndef OTR_FUZZ_KEYS_DIR
#define OTR_FUZZ_KEYS_DIR "test/fuzz/keys"
#endif

struct World;
extern World* world;
void DescribeContexts();

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "fuzz_receive: %s\n", why.c_str());
  DescribeContexts();
  std::abort();
}

bool CopyFile(const std::string& from, const std::string& to) {
  FILE* in = std::fopen(from.c_str(), "rb");
  if (in == nullptr) return false;
  FILE* out = std::fopen(to.c_str(), "wb");
  if (out == nullptr) {
    std::fclose(in);
    return false;
  }
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, in)) > 0) std::fwrite(buffer, 1, n, out);
  std::fclose(in);
  // A private key must be 0600 (the engine refuses one others can read).
  return std::fclose(out) == 0 && ::chmod(to.c_str(), 0600) == 0;
}

struct Party {
  std::string name, account, contact, dir;
  std::unique_ptr<otr::Engine> engine;
  uint32_t nextJob = 1;
  bool secure = false;

  Party(const char* who, const char* accountName, const char* contactName)
      : name(who), account(accountName), contact(contactName) {
    engine = std::make_unique<otr::Engine>([](otr::Delivery* delivery) {
      delete delivery;
      return true;
    });
    char pattern[] = "/tmp/otr-fuzz-XXXXXX";
    if (mkdtemp(pattern) == nullptr) Die("mkdtemp failed");
    dir = pattern;
    const std::string keys = std::string(OTR_FUZZ_KEYS_DIR) + "/" + name + "/";
    for (const char* file : {"otr.private_key", "otr.instance_tags"}) {
      if (!CopyFile(keys + file, dir + "/" + file)) Die("cannot copy " + keys + file + " (run from the repo root?)");
    }
    otr::CallScope scope;
    otr::Batch result;
    Begin(scope);
    // The key-work budget lifted: every mutated AKE message reaches libotr (the suite tests it).
    otr::Limits limits;
    limits.keyWorkPerWindow = UINT32_MAX;
    engine->SetLimits(limits);
    engine->Load(scope, result,
                 otr::FilePaths{dir + "/otr.private_key", dir + "/otr.fingerprints", dir + "/otr.instance_tags"});
    if (!result.ok) Die(name + ": load failed: " + result.failure.message);
    otr::ChannelRecord settings;
    settings.id = kChannel;
    settings.account = account;
    settings.protocol = kProtocol;
    settings.username = contact;
    settings.policy = OTRL_POLICY_OPPORTUNISTIC;
    settings.maxMessageSize = 0;
    settings.callbacks = 0;  // no blocking queries
    Begin(scope);
    engine->OpenChannel(scope, result, settings);
  }

  ~Party() {
    engine.reset();
    for (const char* file : {"otr.private_key", "otr.instance_tags", "otr.fingerprints"}) {
      unlink((dir + "/" + file).c_str());
    }
    rmdir(dir.c_str());
  }

  void Begin(otr::CallScope& scope) {
    scope = otr::CallScope();
    scope.engine = engine.get();
    scope.us = engine->home();
    scope.job = nextJob++;
  }

  // One channel operation, as a job runs it; returns its effects.
  std::vector<otr::Effect> Op(otr::ChannelOpCall call) {
    otr::CallScope scope;
    otr::Batch result;
    Begin(scope);
    engine->RunChannelOp(scope, result, kChannel, call);
    for (const otr::Effect& effect : scope.effects) {
      if (effect.kind == otr::EffectKind::GoneSecure) secure = true;
    }
    return std::move(scope.effects);
  }
};

std::vector<std::string> Writes(const std::vector<otr::Effect>& effects) {
  std::vector<std::string> out;
  for (const otr::Effect& effect : effects) {
    if (effect.kind == otr::EffectKind::Write) out.push_back(std::get<otr::WritePayload>(effect.payload).text);
  }
  return out;
}

struct World {
  std::unique_ptr<Party> alice, bob;
  unsigned long inputs = 0;
  unsigned long checks = 0;

  World() {
    const std::string& failure = otr::InitialiseLibraries();
    if (!failure.empty()) Die(failure);
    alice = std::make_unique<Party>("alice", kAlice, kBob);
    bob = std::make_unique<Party>("bob", kBob, kAlice);
    // The AKE: Alice queries, then the parties exchange what they write until quiet.
    std::vector<std::string> toBob = Writes(alice->Op(otr::InitArgs{}));
    std::vector<std::string> toAlice;
    for (int round = 0; round < 20 && (!toBob.empty() || !toAlice.empty()); ++round) {
      std::vector<std::string> next;
      for (const std::string& m : toBob) {
        for (std::string& w : Writes(bob->Op(otr::ReadArgs{m}))) toAlice.push_back(std::move(w));
      }
      toBob.clear();
      for (const std::string& m : toAlice) {
        for (std::string& w : Writes(alice->Op(otr::ReadArgs{m}))) next.push_back(std::move(w));
      }
      toAlice.clear();
      toBob = std::move(next);
    }
    if (!alice->secure || !bob->secure) Die("the AKE did not complete");
    Check();
  }

  // A fresh data message each way must come through as plaintext.
  void Check() {
    ++checks;
    Expect(*alice, *bob, "check " + std::to_string(checks) + " from alice");
    Expect(*bob, *alice, "check " + std::to_string(checks) + " from bob");
  }

  static void Expect(Party& from, Party& to, const std::string& text) {
    const std::vector<std::string> wire = Writes(from.Op(otr::WriteArgs{text}));
    bool seen = false;
    bool encrypted = !wire.empty();
    for (const std::string& m : wire) {
      encrypted = encrypted && m.rfind("?OTR:AAMD", 0) == 0;
      for (const otr::Effect& effect : to.Op(otr::ReadArgs{m})) {
        if (effect.kind == otr::EffectKind::Read && std::get<otr::ReadPayload>(effect.payload).text == text)
          seen = true;
      }
    }
    if (!encrypted)
      Die("the session is no longer encrypted: " + from.name + " sent " + (wire.empty() ? "nothing" : wire[0]));
    if (!seen) Die("the session is broken: " + to.name + " did not decrypt \"" + text + "\"");
  }

  size_t BobContexts() const {
    size_t n = 0;
    for (ConnContext* c = bob->engine->home()->context_root; c != nullptr; c = c->next) ++n;
    return n;
  }
};

World* world = nullptr;

void DescribeContexts() {
  if (world == nullptr) return;
  for (Party* party : {world->alice.get(), world->bob.get()}) {
    if (party == nullptr) continue;
    for (ConnContext* c = party->engine->home()->context_root; c != nullptr; c = c->next) {
      std::fprintf(stderr, "  %s: context %s their_instance=%u %s msgstate=%d authstate=%d v%d\n", party->name.c_str(),
                   c->username, c->their_instance, c->m_context == c ? "master" : "child", c->msgstate,
                   c->auth.authstate, c->protocol_version);
    }
  }
}

void AtExit() {
  if (world == nullptr) return;
  // On its own thread: by the time exit() runs this handler, the main thread's thread_local
  // objects (the engine's lookup-key buffer among them) are already destroyed.
  std::thread check([] { world->Check(); });
  check.join();
  std::fprintf(stderr, "fuzz_receive: %lu inputs, %lu session checks passed, bob has %zu contexts\n", world->inputs,
               world->checks, world->BobContexts());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* every = std::getenv("OTR_FUZZ_CHECK_EVERY")) {
    checkEvery = std::strtoul(every, nullptr, 10);
    if (checkEvery == 0) checkEvery = 1;
  }
  world = new World();
  std::atexit(AtExit);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A JS string handed to read() reaches the engine as UTF-8 without NULs cutting it short
  // only up to the first NUL (libotr takes a C string): the same here.
  std::string text(reinterpret_cast<const char*>(data), size);
  world->bob->Op(otr::ReadArgs{text});
  if (++world->inputs % checkEvery == 0) world->Check();
  return 0;
}

// Half the time, mutate the decoded bytes of an "?OTR:...." message and re-encode them.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t maxSize, unsigned int seed) {
  if ((seed & 1) == 0 || size < 6 || std::memcmp(data, "?OTR:", 5) != 0) {
    return LLVMFuzzerMutate(data, size, maxSize);
  }
  std::string message(reinterpret_cast<const char*>(data), size);
  unsigned char* raw = nullptr;
  size_t rawLen = 0;
  if (otrl_base64_otr_decode(message.c_str(), &raw, &rawLen) != 0 || raw == nullptr) {
    return LLVMFuzzerMutate(data, size, maxSize);
  }
  const size_t room = (maxSize > 8 ? (maxSize - 8) / 4 * 3 : 0);
  std::vector<uint8_t> bytes(raw, raw + rawLen);
  std::free(raw);
  if (room < bytes.size() || room == 0) return LLVMFuzzerMutate(data, size, maxSize);
  bytes.resize(room);
  const size_t newLen = LLVMFuzzerMutate(bytes.data(), rawLen, room);
  char* encoded = otrl_base64_otr_encode(bytes.data(), newLen);
  if (encoded == nullptr) return LLVMFuzzerMutate(data, size, maxSize);
  const size_t encodedLen = std::strlen(encoded);
  size_t out = size;
  if (encodedLen <= maxSize) {
    std::memcpy(data, encoded, encodedLen);
    out = encodedLen;
  }
  std::free(encoded);
  return out;
}
