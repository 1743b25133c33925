// The native side of one OTR instance. Its jobs run on the process-wide pool (pool.h): each
// contact's jobs one at a time in the order JS queued them (a strand per channel), different
// contacts' jobs in parallel, and instance-wide jobs (accounts, trust, files, close) alone,
// after every job queued before them and before every job queued after them.
//
// libotr's user state is not thread-safe, so the instance has several: the home state holds
// every contact's contexts while no job uses them and runs the instance-wide jobs; a contact
// job borrows a lender state (same keys and instance tags) and, through a ContactView, the
// contact's block of contexts (RunJob, WithContact). When a job runs is the Scheduler's
// decision (scheduler.h). It knows nothing of N-API: results leave through the Poster as
// Deliveries.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/contact_index.h"
#include "engine/effects.h"
#include "engine/job.h"
#include "engine/job_cost.h"
#include "engine/lender_states.h"
#include "engine/outbox.h"
#include "engine/scheduler.h"
#include "engine/spent_batches.h"
#include "io/file_trust_store.h"
#include "otr/contact_view.h"
#include "otr/libotr.h"

namespace otr {

class Engine;

// The opdata of every libotr call: which job is running and what it has produced so far.
struct CallScope {
  Engine* engine = nullptr;
  OtrlUserState us = nullptr;  // the user state this job runs on (home, or a lender)
  uint32_t job = 0;
  ChannelRecord* channel = nullptr;
  std::vector<Effect> effects;
  std::vector<ConnContext*> smpToAbort;                          // libotr asks apps to abort after CHEATED/ERROR
  std::vector<std::pair<ConnContext*, std::string>> smpAnswers;  // from onSmp, sent after the call
  std::vector<ConnContext*> wentSecure;                          // their finished AKE's state is freed after the call
  // The write being sent: libotr reports ENCRYPTION_REQUIRED and CONNECTION_ENDED for it
  // without its text, which JS is given instead.
  const std::string* sendingText = nullptr;
  bool deferred = false;  // the job's result comes later (key generation)
  // libotr decrypted a data message in this call (it asks convert_msg only for those).
  bool decrypted = false;
  // Inside otrl_message_receiving for a contact over its budget (budget.cc): wire text libotr
  // sends is withheld (counted in repliesWithheld), SMP errors are not reported or answered.
  bool withholdReplies = false;
  bool overBudget = false;
  uint32_t repliesSent = 0;  // wire messages emitted inside the receiving call
  uint32_t repliesWithheld = 0;
  uint32_t smpSteps = 0;  // SMP steps libotr computed (handle_smp_event)
  // Set by the ops that report a change of contexts, fingerprints or trust: only then is
  // the contact's state compared with what JS last saw (a data message changes none).
  bool stateMayHaveChanged = false;
  // A data message for a session this side does not have arrived in this call (libotr's
  // RCVDMSG_NOT_IN_PRIVATE, or restart.cc), from this instance (0: OTR v2).
  bool lostSession = false;
  uint32_t lostSessionInstag = 0;
  // libotr added a fingerprint or changed a trust of the contact in view (new_fingerprint,
  // write_fingerprints): its rows go to the trust store when the view closes.
  bool fingerprintsChanged = false;
  // After the call, the contact is inside an SMP: its next data message is expected to carry
  // a step (the scheduler keeps it off the express thread, Scheduler::Learn).
  bool smpUnderway = false;
};

// What budget.cc decides about a received message before libotr sees it.
struct IncomingVerdict {
  bool drop = false;
  bool replaced = false;  // libotr gets `text` instead (a whitespace tag stripped)
  bool overBudget = false;
  bool answersQuery = false;  // a query libotr will answer with a DH-Commit
  std::string text;
};

struct FilePaths {
  std::string privkeys, fingerprints, instags;
};

// A contact as a job resolved it (see ContactIndex, identity): its key and the names in it.
struct ContactRef {
  std::string key, account, protocol, username;
};

// How ForgetContact frees a contact.
struct ForgetHow {
  bool dropUnverified = false;  // its unverified fingerprints go too
  bool endSessions = false;     // an encrypted contact is sent the disconnect message first
};

// What one contact's messages may make us keep (set from the OTR options; see guard.cc).
struct Limits {
  size_t maxInstancesPerContact = 32;
  size_t maxReassembledBytes = 1 << 20;  // all of a contact's partial fragmented messages
  size_t maxIncomingBytes = 1 << 20;     // one message handed to read()
  // Public-key work (AKE messages, SMP steps) and replies one contact may cause per window
  // (see budget.cc).
  uint32_t keyWorkPerWindow = 30;
  std::chrono::milliseconds keyWorkWindow{10000};
};

class Engine : public Scheduler::Runner {
 public:
  using Poster = Outbox::Poster;

  explicit Engine(Poster post);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // --- JS thread ---
  // Before Start(): jobs read them without a lock.
  void SetLimits(const Limits& limits) { limits_ = limits; }
  void Start();
  void Enqueue(Job job);
  // Any thread (a job of forget.cc): the channel is gone, what its jobs cost is no longer needed.
  void ForgetLastCosts(uint32_t channelId);
  // Stops the scheduler (a job waiting for a JS answer takes the default), waits for the jobs
  // running on pool threads, joins key generations in flight and frees libotr's state.
  // Idempotent; safe from finalizers and environment cleanup.
  void Shutdown();
  // Stores JS's answer to a query and wakes the job waiting for it.
  void Answer(const std::shared_ptr<Query>& query, bool hasString, std::string text, int64_t number);
  void AnswerDefault(const std::shared_ptr<Query>& query);
  // Batches JS has applied: their calls freed here, their secrets wiped, the batches reused or
  // freed on a pool thread (spent_batches.h).
  void Recycle(std::vector<std::unique_ptr<Batch>>& batches);
  // A delivery whose batches JS took: sent again by the outbox (outbox.h).
  void Recycle(std::unique_ptr<Delivery> delivery) { outbox_.Return(std::move(delivery)); }
  EngineStats Stats();

  // --- pool threads: jobs (one file per concern) ---
  // Called once, by the constructor on the JS thread, before Start().
  void Load(CallScope& scope, Batch& result, FilePaths paths);                                  // contacts.cc
  void EnsureAccount(CallScope& scope, Batch& result, std::string name, std::string protocol);  // keygen.cc
  void FinishKeygen(CallScope& scope, std::string key);                                         // keygen.cc
  // The trust calls: `contactId` is the JS Contact's id (0: by name alone).
  void AddContact(CallScope& scope, Batch& result, uint64_t contactId, std::string account, std::string protocol,
                  std::string username, std::string fingerprintHex, bool verified);  // contacts.cc
  void SetTrust(CallScope& scope, Batch& result, uint64_t contactId, std::string account, std::string protocol,
                std::string username, std::string fingerprintHex, bool verified);
  void ForgetFingerprint(CallScope& scope, Batch& result, uint64_t contactId, std::string account, std::string protocol,
                         std::string username, std::string fingerprintHex);
  void OpenChannel(CallScope& scope, Batch& result, ChannelRecord settings);  // channel.cc
  // One call of a channel (contract.h, ChannelOpCall); each op's handler is in channel.cc.
  void RunChannelOp(CallScope& scope, Batch& result, uint32_t channelId, ChannelOpCall& call);  // channel.cc
  // Frees the contact's channel record and libotr contexts; its fingerprints stay (those not
  // verified go too with dropUnverified, and the file is rewritten).
  void ForgetContact(CallScope& scope, Batch& result, uint64_t contactId, std::string account, std::string protocol,
                     std::string username, ForgetHow how);  // forget.cc
  // Renames the contact `contactId` to `to`. A name held by a contact with nothing to lose (a
  // squatter: see rename.cc) is taken from it; any other holder makes it ERR_OTR_CONTACT_EXISTS.
  void RenameContact(CallScope& scope, Batch& result, uint64_t contactId, std::string account, std::string protocol,
                     std::string from, std::string to);           // rename.cc
  void Close(CallScope& scope, Batch& result, bool endSessions);  // engine.cc

  // --- pool threads: used by the ui_ops trampolines ---
  OtrlUserState home() const { return us_; }
  const OtrlMessageAppOps* ops() const;
  ChannelRecord* ChannelFor(ConnContext* context);
  ChannelRecord* ChannelFor(const char* account, const char* protocol, const char* username);
  // Sends what the scope has so far plus the query to JS, and waits for the answer.
  // False when no answer will come (shutting down): use the default.
  bool Ask(CallScope& scope, const std::shared_ptr<Query>& query);
  void GenerateInstag(CallScope& scope, const char* account, const char* protocol);  // keygen.cc
  // True while an account's key has no instance tag yet: channels then open on the home state.
  bool MissingInstags() const { return missingInstags_.load(std::memory_order_acquire); }
  void NoteMissingInstags();  // keygen.cc
  // `contactId`: the JS Contact it is for (0: whichever JS has under the name); by default the
  // one bound to the contact.
  void EmitContactState(CallScope& scope, ConnContext* master, ChannelRecord* channel,
                        uint64_t contactId = kBoundContact);  // contacts.cc
  static constexpr uint64_t kBoundContact = ~uint64_t{0};
  void EmitAccount(CallScope& scope, OtrlPrivKey* key);  // keygen.cc
  // A contact's master context, through our index (libotr's own lookup walks every context).
  ConnContext* FindMaster(const std::string& account, const std::string& protocol, const std::string& username);
  // Callbacks that report a change of state see the new state: emitted right before them.
  void EmitStateIfChanged(CallScope& scope, ChannelRecord& channel);  // contacts.cc
  void ReportError(CallScope& scope, const Failure& failure);
  // A new session whose fingerprint is not verified went secure on a contact that has a
  // verified one: JS is told (an impostor, or the contact on a new device).
  void CheckUnverifiedInstance(CallScope& scope, ConnContext* context);
  // Every wire message leaves through here: queries get the channel's text, and nothing
  // sent on a line-based transport contains a line break (wire_text.cc).
  void EmitWire(CallScope& scope, ChannelRecord* channel, const char* message);

 private:
  friend struct ChannelOpHandler;  // channel.cc: one overload per channel op

  // A key being generated: _start done in a job, _calculate on its own thread.
  struct PendingKeygen {
    std::string account, protocol;
    void* newkey = nullptr;
    std::thread thread;
    gcry_error_t error = 0;
    std::vector<uint32_t> waiters;  // account() calls sharing this generation
  };

  // A pool thread runs a job the scheduler started: on the home state if it is instance-wide,
  // else on a lender borrowed for it.
  bool RunJob(Job& job, Scheduler::JobClock& clock) override;
  bool Execute(Job& job, OtrlUserState us);  // whether the job's contact is inside an SMP after it
  // Gives every lender state the keys and instance tags the home state has (files' bytes).
  void RefreshKeyMaterial() { lenders_.Reload(paths_.privkeys, paths_.instags); }
  // The trust store (trust_store.h) is told of every row-level change; these make it durable.
  bool WriteFingerprints(std::string* why);  // persistence.cc
  void PersistFingerprints(Batch& result);   // now, for calls that promise it; failure is theirs
  // Reports the difference between the contact's fingerprints in libotr and its rows.
  void SyncTrustRows(ConnContext* master);  // persistence.cc
  void FlushFingerprintsWhenIdle();
  ConnContext* MasterFor(ChannelRecord& channel);
  // The contact a call is for: by its id once bound (binding it now to `username` if not),
  // else by name. False when another contact object holds the name (result untouched).
  bool Resolve(uint64_t contactId, const std::string& account, const std::string& protocol, const std::string& username,
               ContactRef& ref);
  // Resolve, and the call's failure when it fails.
  bool ResolveOrFail(uint64_t contactId, const std::string& account, const std::string& protocol,
                     const std::string& username, ContactRef& ref, Batch& result);
  void ForgetRecord(CallScope& scope, Batch& result, const ContactRef& ref, ForgetHow how);  // forget.cc
  bool LeavesTombstone(ConnContext* master, const ChannelRecord* channel) const;
  static bool HasVerifiedFingerprint(ConnContext* master);
  void EmitContactGone(CallScope& scope, const ContactRef& ref, uint64_t contactId);  // contacts.cc
  // budget.cc: before libotr sees a received message of `type`, and what it cost after.
  IncomingVerdict AdmitKeyWork(CallScope& scope, ChannelRecord& channel, const std::string& text, OtrlMessageType type);
  void ChargeAfterReceive(ChannelRecord& channel, uint32_t smpSteps, bool replied);
  void OpenBudgetWindow(ChannelRecord& channel);
  bool OverBudget(ChannelRecord& channel);
  void ReportOverBudget(CallScope& scope, ChannelRecord& channel);
  ChannelRecord* ChannelById(uint32_t id);
  // restart.cc: after otrl_message_receiving, a data message for a lost session.
  void NoticeUnknownInstanceData(CallScope& scope, ChannelRecord& channel, const std::string& text,
                                 const std::vector<ConnContext*>& before);
  void RestartLostSession(CallScope& scope, ChannelRecord& channel);
  void Poll(CallScope& scope);  // libotr's poll over every contact (instance-wide job)
  // Runs `calls` with libotr seeing only this contact's contexts (see contact_view.h).
  template <typename Calls>
  void WithContact(CallScope& scope, const std::string& account, const std::string& protocol,
                   const std::string& username, Calls calls);
  void SignatureOf(std::string& signature, ConnContext* master, otrl_instag_t selected, uint32_t flags);
  static uint32_t FlagsOf(ConnContext* master, const ChannelRecord* channel);
  void AfterLibotrCall(CallScope& scope, ChannelRecord& channel);  // channel.cc
  void SendNow(CallScope& scope, Batch& result, ChannelRecord& channel, const std::string& text);
  void SendQuery(CallScope& scope, Batch& result, ChannelRecord& channel);
  void Receive(CallScope& scope, Batch& result, ChannelRecord& channel, const std::string& text);
  // Bounds on message size and reassembled fragments, before libotr sees the message;
  // false: drop it. After the call, what libotr kept is trimmed back to the limits.
  // `type`: what libotr will handle once this message is in (a fragment that does not complete
  // a message: OTRL_MSGTYPE_NOTOTR).
  bool AdmitIncoming(CallScope& scope, ChannelRecord& channel, const std::string& text,
                     OtrlMessageType* type);  // guard.cc
  void TrimAfterReceive(CallScope& scope, ChannelRecord& channel, const std::vector<ConnContext*>& before);
  void ForgetInstance(CallScope* scope, ChannelRecord* channel, ConnContext* instance);  // guard.cc
  void FinishChannel(CallScope& scope, ChannelRecord& channel);
  void RefreshChannel(CallScope& scope, Batch& result, ChannelRecord& channel);
  ConnContext* SelectedContext(ChannelRecord& channel);
  // Environment teardown: joins key generations in flight and drops them.
  void StopKeygens();
  Failure StoreNewKey(void* newkey);
  void ReloadPrivkeys();
  void FreeUserstate();

  OtrlUserState us_ = nullptr;  // the home state
  LenderStates lenders_;
  std::mutex homeMutex_;  // the home state's context list, while lenders borrow and return blocks
  FilePaths paths_;
  Limits limits_;
  std::unique_ptr<FileTrustStore> trust_;
  bool closed_ = false;

  ContactIndex index_;
  std::map<std::string, std::unique_ptr<PendingKeygen>> keygens_;

  Outbox outbox_;       // finished results on their way to JS
  SpentBatches spent_;  // and back, to be reused or freed
  Scheduler scheduler_{*this};
  bool shutDown_ = false;

  std::atomic<bool> missingInstags_{false};
  std::atomic<uint64_t> sessions_{0};
  std::atomic<uint64_t> jobsDone_{0};
};

// The user state whose context list is one contact's while a ContactView is open on this
// thread (null otherwise): a master libotr creates during the call is found there.
extern thread_local OtrlUserState tViewing;

template <typename Calls>
void Engine::WithContact(CallScope& scope, const std::string& account, const std::string& protocol,
                         const std::string& username, Calls calls) {
  ContactView view(us_, scope.us, FindMaster(account, protocol, username), &homeMutex_);
  struct Viewing {
    ~Viewing() { tViewing = nullptr; }
  } viewing;
  tViewing = scope.us;
  calls();
  if (view.master() != nullptr) index_.AddMaster(LookupKey(account, protocol, username), view.master());
  if (scope.fingerprintsChanged && view.master() != nullptr) SyncTrustRows(view.master());
  scope.fingerprintsChanged = false;
}

// The fingerprint as 40 lower-case hex digits, and back (false if `hex` is not 40 hex digits).
std::string FingerprintHex(const unsigned char* fingerprint);
bool ParseFingerprintHex(const std::string& hex, unsigned char out[20]);

}  // namespace otr
