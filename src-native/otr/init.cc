#include "otr/init.h"

#include <cstdio>
#include <mutex>

#include "otr/libotr.h"

namespace otr {

namespace {

// libotr before 4.1.1 overflows the heap on crafted fragments (CVE-2016-2851), and the code
// that reads libotr's private structures (guard.cc, forget.cc, channel.cc) is written for
// the 4.1 series' layout: any other running library is refused before it is used.
std::string CheckRunningLibotr() {
  const char* found = otrl_version();
  unsigned major = 0, minor = 0, sub = 0;
  const bool parsed = found != nullptr && std::sscanf(found, "%u.%u.%u", &major, &minor, &sub) == 3;
  if (parsed && major == 4 && minor == 1 && sub >= 1) return std::string();
  return std::string("libotr ") + (found != nullptr ? found : "(unknown version)") +
         " is installed, but protocol-otr needs libotr 4.1.1 or a later 4.1.x: older versions have a heap "
         "overflow through fragments (CVE-2016-2851), and protocol-otr relies on the 4.1 series' private "
         "structures. Install libotr 4.1.1 or later 4.1.x (Debian/Ubuntu: apt-get install libotr5, or libotr5t64 "
         "on Debian 13 and Ubuntu 24.04 or later) and rebuild protocol-otr against it (npm rebuild protocol-otr)";
}

std::string InitialiseOnce() {
  std::string unsupported = CheckRunningLibotr();
  if (!unsupported.empty()) return unsupported;
  // libgcrypt must be configured before otrl_init installs libotr's allocation handlers:
  // some direct libgcrypt calls are unsafe after that.
  if (!gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
    if (gcry_check_version(GCRYPT_VERSION) == nullptr) {
      return std::string("libgcrypt is older than the version protocol-otr was built with (") + GCRYPT_VERSION + ")";
    }
    gcry_control(GCRYCTL_DISABLE_SECMEM_WARN);
    gcry_control(GCRYCTL_INIT_SECMEM, 32768, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
  }
  // Never OTRL_INIT: on a version mismatch it calls exit(1).
  gcry_error_t err = otrl_init(OTRL_VERSION_MAJOR, OTRL_VERSION_MINOR, OTRL_VERSION_SUB);
  if (err != 0) {
    return std::string("the installed libotr is not compatible with the ") + OTRL_VERSION +
           " headers protocol-otr was built with";
  }
  return std::string();
}

}  // namespace

const std::string& InitialiseLibraries() {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] { failure = InitialiseOnce(); });
  return failure;
}

}  // namespace otr
