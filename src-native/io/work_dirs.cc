// What a killed process leaves behind may hold key material: the working directories of
// PostgresStore nodes, like temp files of an interrupted write (whose sweep is in files.h).
// The sweep runs on descriptors and never follows a symbolic link.
#include "io/work_dirs.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/files.h"
#include "io/unique_fd.h"

namespace otr {

namespace {

constexpr int kOpenDirectory = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
constexpr int kMaxDepth = 8;  // a work directory holds files only; deeper is not ours

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// Removes everything in the directory `dirFd`, relative to it, never through a link.
bool EmptyDirectory(int dirFd, int depth) {
  bool empty = true;
  for (const std::string& name : NamesIn(dirFd, [](const std::string&) { return true; })) {
    if (::unlinkat(dirFd, name.c_str(), 0) == 0) continue;
    if (errno == EISDIR && depth < kMaxDepth) {
      const UniqueFd sub(::openat(dirFd, name.c_str(), kOpenDirectory));
      if (sub && EmptyDirectory(sub.Get(), depth + 1) && ::unlinkat(dirFd, name.c_str(), AT_REMOVEDIR) == 0) continue;
    }
    empty = false;
  }
  return empty;
}

// One candidate `name` under `parentFd`: removed when it is a directory of this user whose
// owner no longer holds the flock on its marker. Everything is reached from the descriptor
// opened first, so a directory swapped for a link (or another directory) after that open
// is never what gets wiped or emptied.
bool SweepWorkDir(int parentFd, const std::string& name, const std::string& marker, const std::string& keyFile) {
  const UniqueFd dir(::openat(parentFd, name.c_str(), kOpenDirectory));
  struct stat info;
  if (!dir || ::fstat(dir.Get(), &info) != 0 || info.st_uid != ::geteuid()) return false;
  // Without a marker the directory is not ours to judge: made before markers existed, or its
  // owner is between making it and holding the marker.
  const UniqueFd held(::openat(dir.Get(), marker.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!held || ::fstat(held.Get(), &info) != 0 || !S_ISREG(info.st_mode)) return false;
  int rc;
  do {
    rc = ::flock(held.Get(), LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return false;  // held: its owner is alive
  for (const std::string& key : NamesIn(dir.Get(), [&](const std::string& n) { return StartsWith(n, keyFile); })) {
    WipeAndRemoveAt(dir.Get(), key);
  }
  // The directory itself by name: AT_REMOVEDIR removes only an empty directory, never a link.
  return EmptyDirectory(dir.Get(), 0) && ::unlinkat(parentFd, name.c_str(), AT_REMOVEDIR) == 0;
}

}  // namespace

std::vector<std::string> SweepWorkDirs(const std::string& parent, const std::string& prefix, const std::string& marker,
                                       const std::string& keyFile) {
  std::vector<std::string> removed;
  const UniqueFd parentFd(::open(parent.c_str(), kOpenDirectory));
  if (!parentFd || prefix.empty()) return removed;
  for (const std::string& name : NamesIn(parentFd.Get(), [&](const std::string& n) { return StartsWith(n, prefix); })) {
    if (SweepWorkDir(parentFd.Get(), name, marker, keyFile)) removed.push_back(name);
  }
  return removed;
}

}  // namespace otr
