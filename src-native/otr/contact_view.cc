#include "otr/contact_view.h"

namespace otr {

namespace {

// Unlinks the block [master, last] from the list it is in; returns `last`.
ConnContext* Unlink(ConnContext* master) {
  ConnContext* last = master;
  while (last->next != nullptr && last->next->m_context == master) last = last->next;
  *master->tous = last->next;
  if (last->next != nullptr) last->next->tous = master->tous;
  last->next = nullptr;
  return last;
}

// Puts the block starting at `head` (ending at `last`) at the head of `us`'s list.
void LinkAtHead(OtrlUserState us, ConnContext* head, ConnContext* last) {
  ConnContext* rest = us->context_root;
  last->next = rest;
  if (rest != nullptr) rest->tous = &last->next;
  us->context_root = head;
  head->tous = &us->context_root;
}

}  // namespace

ContactView::ContactView(OtrlUserState home, OtrlUserState us, ConnContext* master, std::mutex* homeLock)
    : home_(home), us_(us), homeLock_(homeLock) {
  if (us_ == home_) {
    if (master != nullptr) Unlink(master);
    rest_ = home_->context_root;
    home_->context_root = master;
    if (master != nullptr) master->tous = &home_->context_root;
    return;
  }
  us_->context_root = nullptr;
  if (master == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(*homeLock_);
    Unlink(master);
  }
  us_->context_root = master;
  master->tous = &us_->context_root;
}

ContactView::~ContactView() {
  ConnContext* head = us_->context_root;
  if (us_ == home_) {
    home_->context_root = rest_;
    if (rest_ != nullptr) rest_->tous = &home_->context_root;
    if (head == nullptr) return;
    ConnContext* last = head;
    while (last->next != nullptr) last = last->next;
    LinkAtHead(home_, head, last);
    return;
  }
  us_->context_root = nullptr;
  if (head == nullptr) return;
  ConnContext* last = head;
  while (last->next != nullptr) last = last->next;
  std::lock_guard<std::mutex> lock(*homeLock_);
  LinkAtHead(home_, head, last);
}

}  // namespace otr
