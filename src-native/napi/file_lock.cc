// The advisory lock a file set is held with while an OTR instance has it open: flock() on a
// sidecar "<file>.lock" (the data files themselves are replaced by rename, so a lock on them
// would not outlive the first write). flock belongs to the open file description, so a second
// open in the same process conflicts as one in another process does, and the kernel drops
// the lock when the holder exits, however it exits. Anything but a regular file found there
// (a FIFO, a socket, a device) is refused, never waited on.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "napi/file_lock.h"

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

const char* KindOf(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISSOCK(mode)) return "a socket";
  return "a device";
}

int OpenLockFile(const std::string& path, int flags) {
  // O_NONBLOCK: a FIFO left there must not make open() wait for a writer forever.
  int fd;
  do {
    fd = open(path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0600);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// lockFile(path): the descriptor holding an exclusive lock on path (created 0600 if missing).
Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "lockFile(path): path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = OpenLockFile(path, O_RDWR | O_CREAT);
  // flock needs no write access: a lock file another user made is still usable if readable.
  if (fd < 0 && errno == EACCES) fd = OpenLockFile(path, O_RDONLY);
  if (fd < 0) {
    const int err = errno;
    throw CodedError(env, "ERR_OTR_LOCK", "cannot open the lock file " + path + ": " + strerror(err), err);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    throw CodedError(env, "ERR_OTR_LOCK", "cannot stat the lock file " + path + ": " + strerror(err), err);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    throw CodedError(env, "ERR_OTR_LOCK",
                     path + " is " + KindOf(st.st_mode) +
                         ", not a regular file: protocol-otr locks its files through a regular file there; remove it (rm " +
                         path + ") and it is made again",
                     0);
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
