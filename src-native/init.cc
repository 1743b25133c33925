#include "init.h"

#include <mutex>

#include "libotr.h"

namespace otr {

namespace {

std::string InitialiseOnce() {
  // libgcrypt must be configured before otrl_init installs libotr's allocation handlers:
  // some direct libgcrypt calls are unsafe after that.
  if (!gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
    if (gcry_check_version(GCRYPT_VERSION) == nullptr) {
      return std::string("libgcrypt is older than the version protocol-otr was built with (") +
             GCRYPT_VERSION + ")";
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
