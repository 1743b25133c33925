// The advisory lock on a file set (see file_lock.cc).
#pragma once

#include <string>

namespace otr {

struct FileLock {
  int fd = -1;            // holds the lock until closed; -1 when it was not taken
  const char* code = "";  // else ERR_OTR_LOCKED (another holder) or ERR_OTR_LOCK
  std::string message;
  int error = 0;  // errno, 0 when none applies
};

// An exclusive lock on `path` (created 0600 if missing), never waited for.
FileLock LockFile(const std::string& path);

}  // namespace otr
