#include "io/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "io/unique_fd.h"

namespace otr {

namespace {

std::string ErrnoText(const std::string& what, int error) { return what + ": " + std::strerror(error); }

std::string DirectoryOf(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool IsHex(const std::string& text, size_t length) {
  if (text.size() != length) return false;
  for (char c : text) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::vector<std::string> SplitTabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (;;) {
    const auto tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return fields;
    start = tab + 1;
  }
}

// Calls visit(line, number, complaint) for every non-empty line, where complaint is what
// check() found wrong with it (empty: nothing); stops when visit returns false.
void VisitLines(const std::string& bytes, const std::function<std::string(const std::string&)>& check,
                const std::function<bool(const std::string&, size_t, const std::string&)>& visit) {
  size_t start = 0;
  size_t number = 0;
  while (start < bytes.size()) {
    auto end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    std::string line = bytes.substr(start, end - start);
    ++number;
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    // libotr reads these files with a 1000-byte line buffer and would split longer lines.
    const std::string complaint = line.size() >= 998 ? "longer than libotr can read" : check(line);
    if (!visit(line, number, complaint)) return;
  }
}

// The first complaint, as "line N: why"; empty when every line is well formed.
std::string CheckLines(const std::string& bytes, const std::function<std::string(const std::string&)>& check) {
  std::string first;
  VisitLines(bytes, check, [&](const std::string&, size_t number, const std::string& complaint) {
    if (complaint.empty()) return true;
    first = "line " + std::to_string(number) + ": " + complaint;
    return false;
  });
  return first;
}

bool HasControl(const std::string& text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

std::string CheckFingerprintLine(const std::string& line) {
  const auto fields = SplitTabs(line);
  if (fields.size() < 4 || fields.size() > 5) {
    return "expected username, account, protocol, fingerprint and trust separated by tabs";
  }
  for (size_t i = 0; i < 3; ++i) {
    if (fields[i].empty()) return "empty username, account or protocol";
    if (HasControl(fields[i])) return "a control character in the username, account or protocol";
  }
  if (!IsHex(fields[3], 40)) return "the fingerprint is not 40 hexadecimal digits";
  if (fields.size() == 5 && HasControl(fields[4])) return "a control character in the trust";
  return std::string();
}

}  // namespace

FileContent OpenForReading(const std::string& path) {
  FileContent content;
  // Opened once, never through a symbolic link, and everything (type, owner, mode, bytes)
  // comes from that descriptor: nothing can be swapped in between a check and the read.
  content.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
  if (content.fd < 0) {
    if (errno == ELOOP) {
      content.exists = true;
      content.error =
          path +
          " is a symbolic link: protocol-otr does not follow links to its files; give the path of the file itself";
    } else if (errno != ENOENT) {
      content.error = ErrnoText("cannot open " + path, errno);
    }
    return content;
  }
  content.exists = true;
  struct stat info;
  if (::fstat(content.fd, &info) != 0) {
    content.error = ErrnoText("cannot stat " + path, errno);
  } else if (!S_ISREG(info.st_mode)) {
    content.error = path + " is not a regular file";
  } else {
    content.mode = info.st_mode & 07777;
    content.owner = info.st_uid;
    content.size = static_cast<size_t>(info.st_size);
    return content;
  }
  ::close(content.fd);
  content.fd = -1;
  return content;
}

FileContent ReadWholeFile(const std::string& path) {
  FileContent content = OpenForReading(path);
  if (content.fd < 0) return content;
  content.bytes.reserve(content.size + 1);
  char buffer[16384];
  for (;;) {
    const ssize_t got = ::read(content.fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      content.error = ErrnoText("cannot read " + path, errno);
      break;
    }
    if (got == 0) break;
    content.bytes.append(buffer, static_cast<size_t>(got));
  }
  ::close(content.fd);
  content.fd = -1;
  return content;
}

namespace {

std::string ModeText(mode_t mode) {
  char text[16];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::string OtherOwner(const std::string& path, const FileContent& content, const char* what) {
  if (content.owner == ::geteuid()) return std::string();
  return path + " belongs to uid " + std::to_string(content.owner) + ", not to the user running protocol-otr (uid " +
         std::to_string(::geteuid()) + "): refusing " + what + " another user controls; run: chown " +
         std::to_string(::geteuid()) + " " + path;
}

}  // namespace

std::string UnsafeKeyFile(const std::string& path, const FileContent& content) {
  const std::string owner = OtherOwner(path, content, "a private key");
  if (!owner.empty()) return owner;
  if ((content.mode & 077) != 0) {
    return path + " is accessible by group or others (mode " + ModeText(content.mode) +
           "): refusing a private key others can read; run: chmod 600 " + path;
  }
  return std::string();
}

std::string UnsafeSharedFile(const std::string& path, const FileContent& content) {
  const std::string owner = OtherOwner(path, content, "a file");
  if (!owner.empty()) return owner;
  if ((content.mode & 022) != 0) {
    return path + " is writable by group or others (mode " + ModeText(content.mode) +
           "): refusing a file in which others could plant a line; run: chmod go-w " + path;
  }
  return std::string();
}

namespace {

constexpr char kTempInfix[] = ".tmp-";
constexpr size_t kTempInfixLength = sizeof kTempInfix - 1;
constexpr size_t kTempDigits = 12;
constexpr size_t kLegacyTempChars = 6;  // mkstemp's, before the rule in files.h

std::string BaseName(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool AllOf(const std::string& text, size_t from, int (*test)(int)) {
  for (size_t i = from; i < text.size(); ++i) {
    if (!test(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

int IsLowerHex(int c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
// KeepCopy's "<UTC date and time>[-<n>]".
int IsCopyStamp(int c) { return (c >= '0' && c <= '9') || c == 'T' || c == 'Z' || c == '-'; }
int IsAsciiAlnum(int c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// 12 lower-case hex digits from the kernel's random source; from the clock and a counter if
// that fails (the name only has to be new: the file is created with O_EXCL).
std::string RandomTempDigits() {
  unsigned char bytes[kTempDigits / 2];
  if (::getrandom(bytes, sizeof bytes, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof bytes)) {
    static std::atomic<unsigned> counter{0};
    struct timespec now;
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    unsigned long long mixed = static_cast<unsigned long long>(now.tv_nsec) ^
                               (static_cast<unsigned long long>(::getpid()) << 30) ^
                               (static_cast<unsigned long long>(counter++) << 45);
    for (unsigned char& byte : bytes) {
      byte = static_cast<unsigned char>(mixed);
      mixed >>= 8;
    }
  }
  static const char kDigits[] = "0123456789abcdef";
  std::string digits;
  for (unsigned char byte : bytes) {
    digits.push_back(kDigits[byte >> 4]);
    digits.push_back(kDigits[byte & 0x0f]);
  }
  return digits;
}

}  // namespace

bool IsTempFileOf(const std::string& fileName, const std::string& name) {
  const auto infix = name.rfind(kTempInfix);
  if (infix == std::string::npos) return false;
  const std::string stem = name.substr(0, infix);
  const std::string copy = fileName + ".orig-";
  const bool ours = stem == fileName || (stem.size() > copy.size() && stem.compare(0, copy.size(), copy) == 0 &&
                                         AllOf(stem, copy.size(), IsCopyStamp));
  if (!ours) return false;
  const size_t suffix = infix + kTempInfixLength;
  if (name.size() - suffix == kTempDigits) return AllOf(name, suffix, IsLowerHex);
  return name.size() - suffix == kLegacyTempChars && AllOf(name, suffix, IsAsciiAlnum);
}

bool WipeAndRemoveAt(int dirFd, const std::string& name) {
  const UniqueFd fd(::openat(dirFd, name.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
  struct stat info;
  // Not a file with another name (a hard link): wiping would reach whatever that name is.
  if (fd && ::fstat(fd.Get(), &info) == 0 && S_ISREG(info.st_mode) && info.st_uid == ::geteuid() &&
      info.st_nlink == 1) {
    static const char kZeros[65536] = {};
    off_t done = 0;
    while (done < info.st_size) {
      const size_t chunk = static_cast<size_t>(std::min<off_t>(info.st_size - done, sizeof kZeros));
      const ssize_t wrote = ::pwrite(fd.Get(), kZeros, chunk, done);
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote <= 0) break;
      done += wrote;
    }
    // Before the unlink: the pages of a removed file are dropped, never written.
    ::fdatasync(fd.Get());
  }
  return ::unlinkat(dirFd, name.c_str(), 0) == 0;
}

std::vector<std::string> NamesIn(int dirFd, const std::function<bool(const std::string&)>& wanted) {
  std::vector<std::string> names;
  UniqueFd listingFd(::fcntl(dirFd, F_DUPFD_CLOEXEC, 0));
  DIR* listing = listingFd ? ::fdopendir(listingFd.Get()) : nullptr;
  if (listing == nullptr) return names;
  listingFd.Release();  // closed by closedir
  ::rewinddir(listing);
  while (const struct dirent* entry = ::readdir(listing)) {
    const std::string name = entry->d_name;
    if (name != "." && name != ".." && wanted(name)) names.push_back(name);
  }
  ::closedir(listing);
  return names;
}

int RemoveStaleTempFiles(const std::string& path) {
  const std::string fileName = BaseName(path);
  const UniqueFd dir(::open(DirectoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return 0;
  int removed = 0;
  for (const std::string& name : NamesIn(dir.Get(), [&](const std::string& n) { return IsTempFileOf(fileName, n); })) {
    removed += WipeAndRemoveAt(dir.Get(), name) ? 1 : 0;
  }
  return removed;
}

std::string WriteFileAtomically(const std::string& path, mode_t mode, const std::function<bool(FILE*)>& write) {
  std::string temp;
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 16; ++attempt) {
    temp = path + kTempInfix + RandomTempDigits();
    fd = ::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno != EEXIST && errno != EINTR) break;
  }
  if (fd < 0) return ErrnoText("cannot create a temporary file next to " + path, errno);

  std::string failure;
  if (::fchmod(fd, mode) != 0) failure = ErrnoText("cannot set the mode of " + temp, errno);
  FILE* file = failure.empty() ? ::fdopen(fd, "w+") : nullptr;
  if (failure.empty() && file == nullptr) failure = ErrnoText("cannot open " + temp, errno);
  if (file == nullptr) {
    ::close(fd);
  } else {
    errno = 0;
    const bool written = write(file);
    const int writeErrno = errno;
    if (!written || std::ferror(file) != 0 || std::fflush(file) != 0) {
      failure = ErrnoText("cannot write " + path, writeErrno != 0 ? writeErrno : errno);
    } else if (::fsync(::fileno(file)) != 0) {
      failure = ErrnoText("cannot sync " + path, errno);
    }
    if (std::fclose(file) != 0 && failure.empty()) failure = ErrnoText("cannot close " + temp, errno);
  }
  if (failure.empty() && ::rename(temp.c_str(), path.c_str()) != 0) {
    failure = ErrnoText("cannot replace " + path, errno);
  }
  if (!failure.empty()) {
    const UniqueFd dir(::open(DirectoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir || !WipeAndRemoveAt(dir.Get(), BaseName(temp))) ::unlink(temp.c_str());
    return failure;
  }
  const int dir = ::open(DirectoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);  // best effort: some file systems refuse fsync on directories
    ::close(dir);
  }
  return std::string();
}

std::string WellFormedFingerprints(const std::string& bytes, std::vector<SkippedLine>& skipped) {
  std::string good;
  good.reserve(bytes.size());
  VisitLines(bytes, CheckFingerprintLine, [&](const std::string& line, size_t number, const std::string& complaint) {
    if (complaint.empty()) {
      good.append(line).push_back('\n');
    } else {
      skipped.push_back(SkippedLine{number, complaint});
    }
    return true;
  });
  return good;
}

std::string KeepCopy(const std::string& path, const std::string& bytes, std::string* copy) {
  char stamp[32];
  const time_t now = ::time(nullptr);
  struct tm utc;
  ::gmtime_r(&now, &utc);
  ::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  // Never over an earlier copy: a second bad start within the same second gets its own name.
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name = path + ".orig-" + stamp + (attempt == 0 ? "" : "-" + std::to_string(attempt));
    struct stat existing;
    if (::lstat(name.c_str(), &existing) == 0) continue;
    *copy = name;
    return WriteFileAtomically(
        name, 0600, [&](FILE* file) { return std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size(); });
  }
  return "cannot find a free name for a copy of " + path;
}

std::string CheckInstagsFormat(const std::string& bytes) {
  return CheckLines(bytes, [](const std::string& line) -> std::string {
    // libotr writes a "# WARNING! ..." comment first and its reader skips lines without tabs.
    if (line[0] == '#' && line.find('\t') == std::string::npos) return std::string();
    const auto fields = SplitTabs(line);
    if (fields.size() != 3) return "expected account, protocol and instance tag separated by tabs";
    if (fields[0].empty() || fields[1].empty()) return "empty account or protocol";
    if (!IsHex(fields[2], 8)) return "the instance tag is not 8 hexadecimal digits";
    return std::string();
  });
}

}  // namespace otr
