// The working directories of PostgresStore nodes that killed processes left (see work_dirs.cc).
#pragma once

#include <string>
#include <vector>

namespace otr {

// Removes every `parent/<prefix>*` directory of this user whose owner no longer holds the
// flock on its `marker` file, wiping the files named `keyFile`* in it first; returns the names
// removed. `parent` itself is not followed if it is a symbolic link.
std::vector<std::string> SweepWorkDirs(const std::string& parent, const std::string& prefix, const std::string& marker,
                                       const std::string& keyFile);

}  // namespace otr
