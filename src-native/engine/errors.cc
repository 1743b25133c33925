#include "engine/errors.h"

namespace otr {

std::string DescribeGcryError(gcry_error_t err) {
  if (err == 0) return std::string();
  const char* text = gcry_strerror(err);
  return text != nullptr ? std::string(text) : std::string("unknown libgcrypt error");
}

Failure MakeFailure(const char* code, const std::string& message, gcry_error_t err) {
  Failure failure{code, message};
  if (err != 0) failure.message += ": " + DescribeGcryError(err);
  return failure;
}

}  // namespace otr
