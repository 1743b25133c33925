// libotr keeps every context of a userstate in one sorted linked list and walks it from the
// head on every lookup, and otrl_message_sending/receiving look up two or three times per
// message. With thousands of contacts every message walks thousands of nodes (measured:
// 10,000 contacts made each message 5x dearer, 30,000 made it 9x, and creating them was
// quadratic).
//
// While a call for one contact runs, a ContactView shows libotr a list holding only that
// contact's contexts (its master and instances, sorted as libotr keeps them): lookups touch a
// handful of nodes, and contexts libotr creates land in that contact's block. When the view
// closes, the block goes back at the head of the full list. Outside a view the order of the
// full list does not matter: libotr only iterates it (poll, writing fingerprints, freeing),
// and we find a contact's master through Engine's index, never through libotr's lookup.
#pragma once

#include "libotr.h"

namespace otr {

class ContactView {
 public:
  // `master` is the contact's master context, or null when it has none yet.
  ContactView(OtrlUserState us, ConnContext* master);
  ~ContactView();
  ContactView(const ContactView&) = delete;
  ContactView& operator=(const ContactView&) = delete;

  // The contact's master context as the calls so far left it (null if none was created).
  ConnContext* master() const { return us_->context_root; }

 private:
  OtrlUserState us_;
  ConnContext* rest_;  // the full list without the contact's block
};

}  // namespace otr
