// What a killed process leaves behind may hold key material: temp files of an interrupted
// write (the rule is in files.h) and the working directories of PostgresStore nodes. Both
// sweeps run on descriptors and never follow a symbolic link.
#include <napi.h>

#include <string>

#include "files.h"
#include "sweeps.h"

namespace otr {

namespace {

std::string StringArgument(const Napi::CallbackInfo& info, size_t index, const char* usage) {
  if (info.Length() <= index || !info[index].IsString()) throw Napi::TypeError::New(info.Env(), usage);
  return info[index].As<Napi::String>().Utf8Value();
}

// sweepTempFiles(file): wipes and removes the temp files a killed write of `file` left; how many.
Napi::Value SweepTempFiles(const Napi::CallbackInfo& info) {
  const std::string file = StringArgument(info, 0, "sweepTempFiles(file): file must be a string");
  return Napi::Number::New(info.Env(), RemoveStaleTempFiles(file));
}

}  // namespace

void ExportSweeps(Napi::Env env, Napi::Object exports) {
  exports.Set("sweepTempFiles", Napi::Function::New<SweepTempFiles>(env, "sweepTempFiles"));
}

}  // namespace otr
