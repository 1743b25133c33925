// What a libotr call produced, in the order libotr produced it. A job collects these and hands
// them to the JS thread in its batch. What each effect and query carries is declared in
// contract.json (contract.h); lib/otr.ts and lib/channel.ts apply them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "contract.h"
#include "engine/errors.h"
#include "engine/job.h"
#include "util/wipe.h"

namespace otr {

// The effect kinds, their payloads (one struct per kind) and the query kinds are declared in
// contract.json; contract.h has them.
struct Effect {
  EffectKind kind;
  uint32_t channel = 0;
  Payload payload;

  // Bytes of text it carries (what a delivery is capped by).
  size_t TextBytes() const {
    return std::visit([](const auto& p) { return p.CappedBytes(); }, payload);
  }
  // Every string an effect carries (message text, SMP questions, symmetric keys…) is wiped
  // before its memory is freed.
  void WipeSecrets() {
    std::visit([](auto& p) { p.ForEachSecret([](std::string& text) { Wipe(text); }); }, payload);
  }
};

// The effect of `payload`'s kind for the channel (0: none).
template <typename P>
Effect MakeEffect(uint32_t channel, P payload) {
  return Effect{P::kKind, channel, Payload(std::move(payload))};
}

// A question libotr needs answered before it can go on: the job waits for JS's answer.
struct Query {
  ~Query() {
    std::visit([](auto& p) { p.ForEachSecret([](std::string& text) { Wipe(text); }); }, payload);
    Wipe(answer);  // an SMP answer, or converted message text
  }
  QueryKind kind;
  uint32_t channel = 0;
  QueryPayload payload;
  // Filled on the JS thread under the owner's mutex.
  bool answered = false;
  bool hasString = false;
  std::string answer;
  int64_t number = 1;
};

// The query of `payload`'s kind for the channel.
template <typename P>
std::shared_ptr<Query> MakeQuery(uint32_t channel, P payload) {
  auto query = std::make_shared<Query>();
  query->kind = P::kKind;
  query->channel = channel;
  query->payload = std::move(payload);
  return query;
}

struct ResultValue {
  enum class Type { None, Bool, Bytes, Account } type = Type::None;
  bool flag = false;
  std::string bytes;
  std::shared_ptr<AccountState> account;
};

struct Batch {
  // Effects carry message text and symmetric keys; once they reached JS they are wiped.
  ~Batch() { WipeSecrets(); }
  void WipeSecrets() {
    if (wiped) return;
    for (Effect& effect : effects) effect.WipeSecrets();
    Wipe(value.bytes);
    wiped = true;
  }
  bool wiped = false;
  // As new, for the next job's result; its list of effects keeps its room (spent_batches.h),
  // unless a long fragmented message grew it past kKeptEffects.
  static constexpr size_t kKeptEffects = 64;
  void Reset() {
    WipeSecrets();
    job = 0;
    done = false;
    ok = true;
    failure = Failure{};
    value = ResultValue{};
    effects.clear();
    if (effects.capacity() > kKeptEffects) std::vector<Effect>().swap(effects);
    query.reset();
    DropSpentCall();
    wiped = false;
  }
  // On the JS thread, which allocated what the call holds; its secrets (an SMP answer) are
  // wiped first even if the call never ran (the instance closed before it could).
  void DropSpentCall() {
    spentCall = nullptr;
    std::visit([](auto& args) { args.ForEachSecret([](std::string& text) { Wipe(text); }); }, spentChannelCall);
    spentChannelCall = ChannelOpCall{};
  }
  // The call the job ran, with what it captured on the JS thread: freed there (spent_batches.h).
  JobRun spentCall;
  ChannelOpCall spentChannelCall;
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
