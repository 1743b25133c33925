#include "engine/job_cost.h"

#include <libotr/proto.h>

#include <algorithm>
#include <cstdint>

#include "engine/engine.h"

namespace otr {

namespace {

bool StartsWith(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

// Base64 of the version and type bytes: 00 03 03 / 00 02 03 are v3 / v2 data messages.
bool IsDataMessage(const std::string& text) { return StartsWith(text, "?OTR:AAMD") || StartsWith(text, "?OTR:AAID"); }

// The shortest wire text of a data message carrying a peer's first SMP step (SMP1: four
// 1536-bit numbers and two hashes, about 1,500 characters; with a question, more).
constexpr uint32_t kShortestSmpStart = 1400;

}  // namespace

JobCost ReadCost(const std::string& text) {
  if (IsDataMessage(text)) return JobCost::kLikeLastRead;
  // Fragments: most only wait for the rest; the last one is the data message.
  if (StartsWith(text, "?OTR|") || StartsWith(text, "?OTR,")) return JobCost::kLikeLastRead;
  if (StartsWith(text, "?OTR Error:")) return JobCost::kCheap;
  if (StartsWith(text, "?OTR")) return JobCost::kExpensive;
  // libotr answers the whitespace tag with an AKE.
  if (text.find(OTRL_MESSAGE_TAG_BASE) != std::string::npos) return JobCost::kExpensive;
  return JobCost::kCheap;
}

uint32_t DataMessageLength(const std::string& text) {
  return IsDataMessage(text) ? static_cast<uint32_t>(std::min<size_t>(text.size(), UINT32_MAX)) : 0;
}

bool MayStartSmp(uint32_t length, uint32_t lastLength) {
  return length >= kShortestSmpStart && length > lastLength + lastLength / 4;
}

}  // namespace otr
