// The user states contact jobs borrow (docs/DESIGN.md, "Parallelism"). Each holds exactly the
// home state's keys and instance tags, loaded from the bytes of the files the home state read
// or wrote, so keys are generated once. One is made when none is idle: an instance has as many
// as its jobs ever ran at once (at most the pool's threads). Their context lists are empty
// except while a job views a contact through one (contact_view.h).
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "otr/libotr.h"

namespace otr {

class LenderStates {
 public:
  LenderStates() = default;
  ~LenderStates() { FreeAll(); }
  LenderStates(const LenderStates&) = delete;
  LenderStates& operator=(const LenderStates&) = delete;

  OtrlUserState Borrow();
  void Return(OtrlUserState us);
  // After a key or instance tag was written: every lender loads the files' bytes anew. Only
  // from instance-wide jobs, while no lender is in use.
  void Reload(const std::string& privkeysPath, const std::string& instagsPath);
  size_t Count();
  // libotr's poll over the home state, which holds every contact while an instance-wide job
  // runs. Each state has its own "timer running" flag: the poll decides for all of them.
  template <typename Poll>
  void PollWith(OtrlUserState home, Poll poll) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (OtrlUserState lender : lenders_) home->timer_running = home->timer_running || lender->timer_running;
    poll();
    for (OtrlUserState lender : lenders_) lender->timer_running = home->timer_running;
  }
  // Frees every lender (none may be borrowed) and wipes the key bytes.
  void FreeAll();

 private:
  void LoadKeyMaterial(OtrlUserState us);  // under mutex_

  std::mutex mutex_;
  std::vector<OtrlUserState> lenders_;
  std::vector<OtrlUserState> idle_;
  std::string keyBytes_, instagBytes_;  // what lenders load; wiped when replaced or freed
};

}  // namespace otr
