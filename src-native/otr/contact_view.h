// libotr keeps every context of a user state in one sorted linked list and walks it from the
// head on every lookup, and otrl_message_sending/receiving look up two or three times per
// message. With thousands of contacts every message walks thousands of nodes (measured:
// 10,000 contacts made each message 5x dearer, 30,000 made it 9x, and creating them was
// quadratic).
//
// While a call for one contact runs, a ContactView shows libotr a list holding only that
// contact's contexts (its master and instances, sorted as libotr keeps them): lookups touch a
// handful of nodes, and contexts libotr creates land in that contact's block. When the view
// closes, the block goes back at the head of the home state's list. Outside a view the order
// of that list does not matter: libotr only iterates it (poll, freeing), and we find a
// contact's master through Engine's index, never through libotr's lookup.
//
// The same view lends the block to another user state (a lender, see engine.h): the block is
// unlinked from the home list (under the home lock, since other threads lend and return other
// blocks at the same time) and becomes the lender's whole list. This is sound because a
// ConnContext holds no pointer to its user state, and on the message path libotr reads from
// the user state only its context list (the view), its private keys and instance tags (the
// same in every state) and its timer flag (merged by Engine::Poll): checked against libotr
// 4.1's context.h, message.c and auth.h, guarded by the version check in libotr.h/init.cc.
#pragma once

#include <mutex>

#include "otr/libotr.h"

namespace otr {

class ContactView {
 public:
  // `master` is the contact's master context in `home`'s list, or null when it has none yet.
  // `us` is the state libotr will be called with: `home` itself (instance-wide jobs, which run
  // alone), or a lender whose list is empty (contact jobs; `homeLock` guards the home list).
  ContactView(OtrlUserState home, OtrlUserState us, ConnContext* master, std::mutex* homeLock);
  ~ContactView();
  ContactView(const ContactView&) = delete;
  ContactView& operator=(const ContactView&) = delete;

  // The contact's master context as the calls so far left it (null if none was created).
  ConnContext* master() const { return us_->context_root; }

 private:
  OtrlUserState home_;
  OtrlUserState us_;
  std::mutex* homeLock_;
  ConnContext* rest_ = nullptr;  // on the home state: the full list without the contact's block
};

}  // namespace otr
