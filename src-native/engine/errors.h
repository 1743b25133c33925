// Failures travel from the pool threads to JS as (code, message) pairs; the codes are the
// stable ERR_OTR_* strings that lib/errors.ts turns into OtrError.
#pragma once

#include <string>

#include "otr/libotr.h"

namespace otr {

struct Failure {
  std::string code;
  std::string message;
};

// libgcrypt's own text for an error, appended to our message where there is one.
std::string DescribeGcryError(gcry_error_t err);

Failure MakeFailure(const char* code, const std::string& message, gcry_error_t err = 0);

}  // namespace otr
