#include "engine/lender_states.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>

#include "io/files.h"
#include "util/wipe.h"

namespace otr {

namespace {

// libotr's key reader fstat()s its FILE (fmemopen has no descriptor): an anonymous
// in-memory file, never on disk, freed when closed.
FILE* ReadFrom(const std::string& bytes) {
  const int fd = memfd_create("protocol-otr-keys", MFD_CLOEXEC);
  if (fd < 0) return nullptr;
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n <= 0) {
      ::close(fd);
      return nullptr;
    }
    written += static_cast<size_t>(n);
  }
  FILE* file = ::lseek(fd, 0, SEEK_SET) == 0 ? ::fdopen(fd, "rb") : nullptr;
  if (file == nullptr) ::close(fd);
  return file;
}

}  // namespace

OtrlUserState LenderStates::Borrow() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!idle_.empty()) {
    OtrlUserState us = idle_.back();
    idle_.pop_back();
    return us;
  }
  OtrlUserState us = otrl_userstate_create();
  LoadKeyMaterial(us);
  lenders_.push_back(us);
  return us;
}

void LenderStates::Return(OtrlUserState us) {
  std::lock_guard<std::mutex> lock(mutex_);
  idle_.push_back(us);
}

void LenderStates::Reload(const std::string& privkeysPath, const std::string& instagsPath) {
  std::lock_guard<std::mutex> lock(mutex_);
  Wipe(keyBytes_);
  keyBytes_ = ReadWholeFile(privkeysPath).bytes;
  instagBytes_ = ReadWholeFile(instagsPath).bytes;
  for (OtrlUserState lender : lenders_) LoadKeyMaterial(lender);
}

size_t LenderStates::Count() {
  std::lock_guard<std::mutex> lock(mutex_);
  return lenders_.size();
}

void LenderStates::FreeAll() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (OtrlUserState lender : lenders_) otrl_userstate_free(lender);  // their context lists are empty
  lenders_.clear();
  idle_.clear();
  Wipe(keyBytes_);
  Wipe(instagBytes_);
}

void LenderStates::LoadKeyMaterial(OtrlUserState us) {
  otrl_privkey_forget_all(us);
  otrl_instag_forget_all(us);
  if (!keyBytes_.empty()) {
    if (FILE* file = ReadFrom(keyBytes_)) {
      otrl_privkey_read_FILEp(us, file);
      std::fclose(file);
    }
  }
  if (!instagBytes_.empty()) {
    if (FILE* file = ReadFrom(instagBytes_)) {
      otrl_instag_read_FILEp(us, file);
      std::fclose(file);
    }
  }
}

}  // namespace otr
