// The advisory lock a file set is held with while an OTR instance has it open: flock() on a
// sidecar "<file>.lock" (the data files themselves are replaced by rename, so a lock on them
// would not outlive the first write). flock belongs to the open file description, so a second
// open in the same process conflicts as one in another process does, and the kernel drops
// the lock when the holder exits, however it exits. Anything but a regular file found there
// (a FIFO, a socket, a device) is refused, never waited on.
#include "io/file_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace otr {

namespace {

FileLock Failed(const char* code, const std::string& message, int err) {
  FileLock failed;
  failed.code = code;
  failed.message = message;
  failed.error = err;
  return failed;
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

}  // namespace

FileLock LockFile(const std::string& path) {
  int fd = OpenLockFile(path, O_RDWR | O_CREAT);
  // flock needs no write access: a lock file another user made is still usable if readable.
  if (fd < 0 && errno == EACCES) fd = OpenLockFile(path, O_RDONLY);
  if (fd < 0) {
    const int err = errno;
    return Failed("ERR_OTR_LOCK", "cannot open the lock file " + path + ": " + strerror(err), err);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return Failed("ERR_OTR_LOCK", "cannot stat the lock file " + path + ": " + strerror(err), err);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return Failed(
        "ERR_OTR_LOCK",
        path + " is " + KindOf(st.st_mode) +
            ", not a regular file: protocol-otr locks its files through a regular file there; remove it (rm " + path +
            ") and it is made again",
        0);
  }
  int rc;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) return Failed("ERR_OTR_LOCKED", path, err);
    return Failed("ERR_OTR_LOCK", "cannot lock " + path + ": " + strerror(err), err);
  }
  FileLock locked;
  locked.fd = fd;
  return locked;
}

}  // namespace otr
