// The three libotr files: reading them strictly, writing them atomically (temp file in the
// same directory, fsync, rename, fsync of the directory) so a crash leaves the old or the
// new version, never a torn one.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace otr {

struct FileContent {
  bool exists = false;
  int fd = -1;  // OpenForReading only: the open descriptor, for the caller to close
  mode_t mode = 0;
  uid_t owner = 0;
  size_t size = 0;
  std::string bytes;
  std::string error;  // non-empty: the path exists but cannot be used
};

FileContent ReadWholeFile(const std::string& path);
// Opens `path` (no symbolic links, regular files only) and fills in what fstat says; `fd` is
// -1 when it does not exist or cannot be used (then `error` says why).
FileContent OpenForReading(const std::string& path);

// Why a private key file must not be used (owned by another user, or group/others have any
// access to it: as ssh refuses such keys), with the command that fixes it; empty if it is fine.
std::string UnsafeKeyFile(const std::string& path, const FileContent& content);

// Why a fingerprints or instance-tags file must not be used (owned by another user, or
// group/others may write it: a line planted there marks a key verified or picks an instance
// tag; as ssh's StrictModes), with the command that fixes it; empty if it is fine. Reading by
// group and others stays allowed.
std::string UnsafeSharedFile(const std::string& path, const FileContent& content);

// Temp files, one rule for every writer in the library (this file's and lib/store-files.ts):
// a file is written as "<file>.tmp-" followed by 12 random lower-case hex digits, created
// exclusively with mode 0600, then renamed over <file>. What a killed write leaves may hold
// key material, so the sweep of <file> wipes (overwrites with zeros) and removes every name of
// that form next to it, those of the copies "<file>.orig-<UTC date and time>" kept beside it,
// and the names with six letters or digits that mkstemp gave the native writer's temp files
// in earlier versions. Nothing else is touched.
bool IsTempFileOf(const std::string& fileName, const std::string& name);

// Writes through `write` (which returns false on failure) into a temp file with `mode`, then
// renames it over `path`. Returns an empty string on success, else the reason.
std::string WriteFileAtomically(const std::string& path, mode_t mode, const std::function<bool(FILE*)>& write);

// Wipes and removes the temp files next to `path` (see IsTempFileOf). Only the single writer
// of `path` may call it (the holder of the file set's lock, the owner of a private
// directory): another writer's temp file would vanish under it. Returns how many were removed.
int RemoveStaleTempFiles(const std::string& path);

// Overwrites `name` (relative to the directory `dirFd`, never through a symbolic link) with
// zeros if it is a regular file of this user with no other name, then removes it. True when it
// was removed.
bool WipeAndRemoveAt(int dirFd, const std::string& name);

// The names in the directory `dirFd` (without "." and "..") for which `wanted` is true.
std::vector<std::string> NamesIn(int dirFd, const std::function<bool(const std::string&)>& wanted);

// The instance-tag file is read strictly: libotr's reader would skip a line it cannot parse
// and we would silently get a new instance tag. Empty string: the content is well formed.
std::string CheckInstagsFormat(const std::string& bytes);

// The fingerprints file is read line by line: a line libotr would misread (too long, wrong
// fields, control characters in a name) is skipped and reported, every good line is kept, so
// one bad line (a hostile name written by an older version, a hand edit) never stops a bridge
// from starting. Returns the good lines.
struct SkippedLine {
  size_t line = 0;
  std::string reason;
};
std::string WellFormedFingerprints(const std::string& bytes, std::vector<SkippedLine>& skipped);

// Writes `bytes` to "<path>.orig-<UTC date and time>" (mode 0600) and sets *copy to that name;
// returns the failure, or an empty string.
std::string KeepCopy(const std::string& path, const std::string& bytes, std::string* copy);

}  // namespace otr
