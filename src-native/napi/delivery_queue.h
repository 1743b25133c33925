// The batches an instance's outbox handed to the JS thread and JS has not applied yet, kept
// here in native memory rather than as JS values. Under load JS applies results more slowly
// than the pool produces them; whatever waits, waits here. Made into JS strings only when a
// chunk is applied, message text dies young in V8's heap instead of surviving collections
// while it waits (a string that outlives two scavenges is copied twice and then kept in the
// old generation until a full collection). JS thread only.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <utility>

#include "engine/effects.h"

namespace otr {

class DeliveryQueue {
 public:
  // A chunk: what one call of the dispatcher applies, so that the time spent is checked
  // every few dozen results at most (the caller asks for fewer when results are slow to apply).
  static constexpr size_t kChunkBatches = 32;
  static constexpr size_t kChunkEffects = 64;

  // Takes the delivery's batches, in order; true when one of them carries a question (a
  // libotr call waits for its answer).
  bool Add(Delivery& delivery) {
    bool asks = false;
    for (auto& batch : delivery.batches) {
      asks = asks || batch->query != nullptr;
      waiting_.push_back(std::move(batch));
    }
    delivery.batches.clear();
    return asks;
  }

  bool Empty() const { return waiting_.empty(); }

  // Moves the next chunk into `chunk`: whole batches, in order, at most `batches` (1 to
  // kChunkBatches) of them and no more than kChunkEffects effects unless its first batch alone
  // has more. A batch with a question ends its chunk, so the dispatcher's return value answers it.
  void TakeChunk(Delivery& chunk, size_t batches) {
    batches = batches < 1 ? 1 : batches > kChunkBatches ? kChunkBatches : batches;
    size_t effects = 0;
    while (!waiting_.empty() && chunk.batches.size() < batches) {
      const size_t next = waiting_.front()->effects.size();
      if (!chunk.batches.empty() && effects + next > kChunkEffects) break;
      effects += next;
      const bool asks = waiting_.front()->query != nullptr;
      chunk.batches.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
      if (asks) break;
    }
  }

  void Clear() { waiting_.clear(); }

 private:
  std::deque<std::unique_ptr<Batch>> waiting_;
};

}  // namespace otr
