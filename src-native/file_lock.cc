// The advisory lock a file set is held with while an OTR instance has it open: flock() on a
// sidecar "<file>.lock" (the data files themselves are replaced by rename, so a lock on them
// would not outlive the first write). flock belongs to the open file description, so a second
// open in the same process conflicts as one in another process does, and the kernel drops
// the lock when the holder exits, however it exits.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <string>

#include "file_lock.h"

namespace otr {

namespace {

// { code, message, errno }: errno (a number) lets JS tell a read-only directory from a
// missing one.
Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message, int err) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", code);
  error.Set("errno", Napi::Number::New(env, err));
  return error;
}

// lockFile(path): the descriptor holding an exclusive lock on path (created 0600 if missing).
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "lockFile(path): path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd;
  do {
    fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  } while (fd < 0 && errno == EINTR);
  // flock needs no write access: a lock file another user made is still usable if readable.
  if (fd < 0 && errno == EACCES) {
    do {
      fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    } while (fd < 0 && errno == EINTR);
  }
  if (fd < 0) {
    const int err = errno;
    throw CodedError(env, "ERR_OTR_LOCK", "cannot open the lock file " + path + ": " + strerror(err), err);
  }
  int rc;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) throw CodedError(env, "ERR_OTR_LOCKED", path, err);
    throw CodedError(env, "ERR_OTR_LOCK", "cannot lock " + path + ": " + strerror(err), err);
  }
  return Napi::Number::New(env, fd);
}

// unlockFile(fd): closing the descriptor releases the lock.
Napi::Value UnlockFile(const Napi::CallbackInfo& info) {
  if (info.Length() >= 1 && info[0].IsNumber()) {
    const int fd = info[0].As<Napi::Number>().Int32Value();
    if (fd >= 0) close(fd);
  }
  return info.Env().Undefined();
}

}  // namespace

void ExportFileLock(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New<LockFile>(env, "lockFile"));
  exports.Set("unlockFile", Napi::Function::New<UnlockFile>(env, "unlockFile"));
}

}  // namespace otr
