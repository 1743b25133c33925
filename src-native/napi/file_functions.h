// The module's file functions (io/): lockFile / unlockFile, the advisory lock on a file set;
// sweepTempFiles / sweepWorkDirs, removing what killed processes left behind.
#pragma once

#include <napi.h>

namespace otr {

void ExportFileLock(Napi::Env env, Napi::Object exports);
void ExportSweeps(Napi::Env env, Napi::Object exports);

}  // namespace otr
