// One call of JS's as the engine runs it: which promise it settles, which strand it belongs
// to, what it is expected to cost, and the work itself.
#pragma once

#include <cstdint>
#include <functional>

#include "contract.h"
#include "engine/job_cost.h"

namespace otr {

class Engine;
struct CallScope;
struct Batch;

// The strand of an instance-wide job (channel ids start at 1).
constexpr uint32_t kInstanceWide = 0;

// The work of a job, with the arguments it captured on the JS thread.
using JobRun = std::function<void(Engine&, CallScope&, Batch&)>;

struct Job {
  uint32_t id = 0;
  uint32_t strand = 0;  // the channel whose calls this job is one of; 0: instance-wide
  JobCost cost = JobCost::kCheap;
  JobRun run;  // empty for a channel's call (below)
  // A read of a whole data message: its length in characters (0 for anything else).
  uint32_t dataMessageLength = 0;
  // A channel's call, the job of nearly every message: held here rather than captured by `run`,
  // which would be an allocation per message. Engine::RunChannelOp runs it.
  uint32_t channel = 0;
  ChannelOpCall channelCall;
};

}  // namespace otr
