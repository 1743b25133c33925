// Over its key-work budget (budget.cc), a contact may not start an SMP exchange: its idle SMP
// states are closed for the length of one libotr call, so libotr refuses the step as out of
// order without computing anything.
#pragma once

#include <vector>

#include "otr/libotr.h"

namespace otr {

class SmpGate {
 public:
  // Closes the idle SMP states of `master`'s contexts when `closed`; they reopen on destruction.
  SmpGate(ConnContext* master, bool closed);
  ~SmpGate();
  SmpGate(const SmpGate&) = delete;
  SmpGate& operator=(const SmpGate&) = delete;

 private:
  std::vector<ConnContext*> gated_;
};

}  // namespace otr
