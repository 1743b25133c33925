// lockFile / unlockFile: the advisory lock on a file set (see file_lock.cc).
#pragma once

#include <napi.h>

namespace otr {

void ExportFileLock(Napi::Env env, Napi::Object exports);

}  // namespace otr
