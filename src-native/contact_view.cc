#include "contact_view.h"

namespace otr {

ContactView::ContactView(OtrlUserState us, ConnContext* master) : us_(us) {
  if (master == nullptr) {
    rest_ = us_->context_root;
    us_->context_root = nullptr;
    return;
  }
  ConnContext* last = master;
  while (last->next != nullptr && last->next->m_context == master) last = last->next;
  // Unlink the block [master, last] from the full list...
  *master->tous = last->next;
  if (last->next != nullptr) last->next->tous = master->tous;
  rest_ = us_->context_root;
  // ...and make it the whole list libotr sees.
  last->next = nullptr;
  us_->context_root = master;
  master->tous = &us_->context_root;
}

ContactView::~ContactView() {
  ConnContext* head = us_->context_root;
  if (head == nullptr) {
    us_->context_root = rest_;
    if (rest_ != nullptr) rest_->tous = &us_->context_root;
    return;
  }
  ConnContext* last = head;
  while (last->next != nullptr) last = last->next;
  last->next = rest_;
  if (rest_ != nullptr) rest_->tous = &last->next;
  // head->tous already points at us_->context_root.
}

}  // namespace otr
