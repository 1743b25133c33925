// The three libotr files: reading them strictly, writing them atomically (temp file in the
// same directory, fsync, rename, fsync of the directory) so a crash leaves the old or the
// new version, never a torn one.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <functional>
#include <string>

namespace otr {

struct FileContent {
  bool exists = false;
  std::string bytes;
  std::string error;  // non-empty: the path exists but cannot be used
};

FileContent ReadWholeFile(const std::string& path);

// Writes through `write` (which returns false on failure) into a temp file with `mode`, then
// renames it over `path`. Returns an empty string on success, else the reason.
std::string WriteFileAtomically(const std::string& path, mode_t mode,
                                const std::function<bool(FILE*)>& write);

// Removes temp files a write killed mid-way left next to `path` (they may hold private key
// material). Returns how many were removed.
int RemoveStaleTempFiles(const std::string& path);

// libotr's readers skip lines they cannot parse; we refuse such files instead of silently
// losing trust records or instance tags. Empty string: the content is well formed.
std::string CheckFingerprintsFormat(const std::string& bytes);
std::string CheckInstagsFormat(const std::string& bytes);

}  // namespace otr
