// sweepTempFiles / sweepWorkDirs: removing what killed processes left behind (see sweeps.cc).
#pragma once

#include <napi.h>

namespace otr {

void ExportSweeps(Napi::Env env, Napi::Object exports);

}  // namespace otr
