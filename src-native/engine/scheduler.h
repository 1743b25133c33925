// An instance's jobs on the process-wide pool (pool.h): a strand per channel (its jobs one at
// a time, in call order), instance-wide jobs as barriers (they start when every job queued
// before them has finished, and jobs queued after them wait), what each kind of job is
// expected to cost, and the questions jobs wait on. The scheduler decides when a job runs;
// its Runner (the Engine) runs it: on which user state, and where its results go.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/effects.h"
#include "engine/job.h"
#include "engine/job_queue.h"
#include "engine/pool.h"

namespace otr {

class Scheduler : public TaskOwner {
 public:
  // The wall time, and the CPU time when asked for, of one job on the pool thread running it.
  class JobClock {
   public:
    explicit JobClock(bool measureCpu) : measureCpu_(measureCpu) {}
    void Start();
    void Stop();
    std::chrono::nanoseconds Wall() const { return wall_; }
    std::chrono::nanoseconds Cpu() const { return cpu_; }  // negative: not measured

   private:
    bool measureCpu_;
    std::chrono::steady_clock::time_point started_{};
    std::chrono::nanoseconds cpuStarted_{0};
    std::chrono::nanoseconds wall_{0};
    std::chrono::nanoseconds cpu_{-1};
  };

  class Runner {
   public:
    virtual ~Runner() = default;
    // Runs `job` on this pool thread, with `clock` started and stopped around the job's own
    // work (what its cost is learnt from). Returns whether the job's contact is inside an SMP
    // (its next data message is expected to carry a step of it).
    virtual bool RunJob(Job& job, JobClock& clock) = 0;
  };

  struct Counts {
    uint64_t queued = 0;   // jobs waiting to start
    uint64_t running = 0;  // jobs started whose result is not yet posted
    uint64_t strands = 0;  // channels with jobs queued or running
  };

  explicit Scheduler(Runner& runner) : runner_(runner) {}
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // --- JS thread ---
  // Gives the pool its threads if nothing did yet (one per core).
  void Start();
  void Enqueue(Job job);
  // Drops every queued job, makes jobs waiting for an answer take the default, and returns
  // once no task of this scheduler runs or waits in the pool.
  void Stop();
  // Stores JS's answer to a query and wakes the job waiting for it.
  void Answer(const std::shared_ptr<Query>& query, bool hasString, std::string text, int64_t number);
  void AnswerDefault(const std::shared_ptr<Query>& query);
  Counts Count();

  // --- any thread ---
  // The channel is gone: what its jobs cost is no longer needed.
  void ForgetLastCosts(uint32_t channelId);

  // --- pool threads ---
  void RunTask(uint32_t tag) override;
  // From Runner::RunJob, before the job's result is posted: stats() read once a promise
  // settled never shows that call as running.
  void CountFinished();
  // No job of the instance waits to start.
  bool NothingToStart();
  bool Stopping();
  // Waits for JS's answer to `query` (asked already); false when none will come (stopping).
  bool AwaitAnswer(const std::shared_ptr<Query>& query);

 private:
  struct Strand {
    JobQueue jobs;
    bool running = false;
  };

  void Admit(Job job);        // under mutex_
  void Drain();               // under mutex_: admits what waited behind a finished barrier
  void StartGlobal(Job job);  // under mutex_
  // Whether the job will do public-key work (a millisecond or more); under mutex_.
  bool Expensive(const Job& job) const;
  bool MeasureCpu(const Job& job) const;
  void Learn(const Job& job, std::chrono::nanoseconds wall, std::chrono::nanoseconds cpu, bool smpUnderway);
  static constexpr unsigned kLastReadExpensive = 1, kLastWriteExpensive = 2;
  static constexpr unsigned kLastReadUnsure = 4, kLastWriteUnsure = 8;  // see MeasureCpu
  static constexpr unsigned kSmpUnderway = 16;                          // see Learn
  struct LastCosts {
    unsigned flags = kLastReadExpensive;  // absent or new: reads expensive, writes cheap
    uint32_t dataMessageLength = 0;       // of the last whole data message read (see Expensive)
  };

  Runner& runner_;
  std::mutex mutex_;  // the state below, and every Query's answer fields
  std::condition_variable wake_;
  std::unordered_map<uint32_t, Strand> strands_;
  // Strands that ran dry, emptied but with their memory, for the next ones to start.
  static constexpr size_t kSpareStrands = 64;
  std::vector<std::unordered_map<uint32_t, Strand>::node_type> spareStrands_;
  // Per channel: whether its last data-message read / write took a millisecond of CPU or more,
  // whether that is unsure, and whether an SMP is under way (see Learn). Absent: reads
  // expensive (a first data message rotates keys), writes cheap.
  std::unordered_map<uint32_t, LastCosts> lastCosts_;
  size_t admitted_ = 0;    // contact jobs in strands, queued or running
  size_t notStarted_ = 0;  // jobs queued anywhere that have not started
  size_t running_ = 0;     // tasks running on pool threads (until their bookkeeping ends)
  size_t working_ = 0;     // jobs started whose result is not yet posted: stats().running
  size_t inPool_ = 0;      // tasks submitted to the pool and not yet started
  bool globalRunning_ = false;
  Job global_;               // the instance-wide job started last
  std::deque<Job> waiting_;  // behind an instance-wide job: in call order
  bool stopping_ = false;
};

}  // namespace otr
