#include "napi/file_functions.h"

#include <unistd.h>

#include <string>
#include <vector>

#include "io/file_lock.h"
#include "io/files.h"
#include "io/work_dirs.h"

namespace otr {

namespace {

std::string StringArgument(const Napi::CallbackInfo& info, size_t index, const char* usage) {
  if (info.Length() <= index || !info[index].IsString()) throw Napi::TypeError::New(info.Env(), usage);
  return info[index].As<Napi::String>().Utf8Value();
}

// lockFile(path): the descriptor holding an exclusive lock on path (created 0600 if missing).
// A failure throws { code, message, errno }: errno (a number) lets JS tell a read-only
// directory from a missing one.
Napi::Value JsLockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(env, "lockFile(path): path must be a string");
  const FileLock lock = LockFile(info[0].As<Napi::String>().Utf8Value());
  if (lock.fd < 0) {
    Napi::Error error = Napi::Error::New(env, lock.message);
    error.Set("code", lock.code);
    error.Set("errno", Napi::Number::New(env, lock.error));
    throw error;
  }
  return Napi::Number::New(env, lock.fd);
}

// unlockFile(fd): closing the descriptor releases the lock.
Napi::Value JsUnlockFile(const Napi::CallbackInfo& info) {
  if (info.Length() >= 1 && info[0].IsNumber()) {
    const int fd = info[0].As<Napi::Number>().Int32Value();
    if (fd >= 0) close(fd);
  }
  return info.Env().Undefined();
}

// sweepTempFiles(file): wipes and removes the temp files a killed write of `file` left; how many.
Napi::Value JsSweepTempFiles(const Napi::CallbackInfo& info) {
  const std::string file = StringArgument(info, 0, "sweepTempFiles(file): file must be a string");
  return Napi::Number::New(info.Env(), RemoveStaleTempFiles(file));
}

// sweepWorkDirs(parent, prefix, marker, keyFile): the names of the directories removed.
Napi::Value JsSweepWorkDirs(const Napi::CallbackInfo& info) {
  const char* usage = "sweepWorkDirs(parent, prefix, marker, keyFile): four strings";
  const std::string parent = StringArgument(info, 0, usage);
  const std::string prefix = StringArgument(info, 1, usage);
  const std::string marker = StringArgument(info, 2, usage);
  const std::string keyFile = StringArgument(info, 3, usage);
  const std::vector<std::string> names = SweepWorkDirs(parent, prefix, marker, keyFile);
  Napi::Array removed = Napi::Array::New(info.Env(), names.size());
  for (uint32_t i = 0; i < names.size(); ++i) removed.Set(i, names[i]);
  return removed;
}

}  // namespace

void ExportFileLock(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New<JsLockFile>(env, "lockFile"));
  exports.Set("unlockFile", Napi::Function::New<JsUnlockFile>(env, "unlockFile"));
}

void ExportSweeps(Napi::Env env, Napi::Object exports) {
  exports.Set("sweepTempFiles", Napi::Function::New<JsSweepTempFiles>(env, "sweepTempFiles"));
  exports.Set("sweepWorkDirs", Napi::Function::New<JsSweepWorkDirs>(env, "sweepWorkDirs"));
}

}  // namespace otr
