#include "otr/smp_gate.h"

namespace otr {

SmpGate::SmpGate(ConnContext* master, bool closed) {
  if (!closed) return;
  for (ConnContext* c = master; c != nullptr && c->m_context == master; c = c->next) {
    if (c->smstate != nullptr && c->smstate->nextExpected == OTRL_SMP_EXPECT1) {
      // libotr never expects EXPECT5: an SMP message now is "out of order", an SMP error it
      // reports without any arithmetic (message.c, the TLV handling after decryption).
      c->smstate->nextExpected = OTRL_SMP_EXPECT5;
      gated_.push_back(c);
    }
  }
}

SmpGate::~SmpGate() {
  for (ConnContext* c : gated_) {
    if (c->smstate != nullptr && c->smstate->nextExpected == OTRL_SMP_EXPECT5)
      c->smstate->nextExpected = OTRL_SMP_EXPECT1;
  }
}

}  // namespace otr
