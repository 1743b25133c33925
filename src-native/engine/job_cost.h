// What a contact's job is expected to cost, known before it runs: the pool keeps work that
// does no public-key arithmetic off the threads that are inside an AKE or SMP step (tens of
// milliseconds of modular exponentiation), so a cheap message never waits behind one.
#pragma once

#include <cstdint>
#include <string>

namespace otr {

enum class ChannelOp : int;  // engine.h

enum class JobCost : uint8_t {
  kCheap,      // no public-key work: a query, ending a session, a symmetric key, plain text
  kExpensive,  // public-key work every time: starting an AKE or SMP, an AKE message
  // Depends on the session: a data message may rotate keys or carry an SMP step, a write may
  // wait for JS. The strand's last job of the same kind decides (see Scheduler::Expensive).
  kLikeLastRead,
  kLikeLastWrite,
};

// From the message's first bytes only: a data message (or a fragment of one) is kLikeLastRead,
// any other OTR message (query, AKE) kExpensive, an OTR error or plain text kCheap unless it
// carries the whitespace tag that starts an AKE.
JobCost ReadCost(const std::string& text);
JobCost OpCost(ChannelOp op);

}  // namespace otr
