// Process-wide libgcrypt + libotr initialisation, done once whatever the number of addon
// instances (main thread and worker_threads).
#pragma once

#include <string>

namespace otr {

// Returns an empty string on success, else why initialisation failed. Never calls exit().
const std::string& InitialiseLibraries();

}  // namespace otr
