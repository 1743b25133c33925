// What a contact's job is expected to cost, known before it runs: the pool keeps work that
// does no public-key arithmetic off the threads that are inside an AKE or SMP step (tens of
// milliseconds of modular exponentiation), so a cheap message never waits behind one. Each
// channel op declares its cost in contract.json (JobCost, CostOf in contract.h); a read's
// depends on what it reads.
#pragma once

#include <cstdint>
#include <string>

#include "contract.h"

namespace otr {

// From the message's first bytes only: a data message (or a fragment of one) is kLikeLastRead,
// any other OTR message (query, AKE) kExpensive, an OTR error or plain text kCheap unless it
// carries the whitespace tag that starts an AKE.
JobCost ReadCost(const std::string& text);

// The length of `text` if it is a whole data message (not a fragment), else 0.
uint32_t DataMessageLength(const std::string& text);

// A peer's first SMP step comes unannounced, inside a data message (the next steps are
// announced by the SMP under way, see Scheduler::Learn). One long enough to carry it and a
// quarter longer than the contact's last data message is expected to be it: a contact whose
// messages are short rarely sends a long one, and for one whose messages are long the CPU its
// last one took decides, as for any data message. Lengths from DataMessageLength.
bool MayStartSmp(uint32_t length, uint32_t lastLength);

}  // namespace otr
