#!/bin/sh
# Build the C baseline: bench/c/build/baseline, and the allocation counter the benchmarks
# preload, bench/c/build/alloc_count.so (the build directory is git-ignored).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/build"
${CC:-cc} -O2 -Wall -Wextra -o "$here/build/baseline" "$here/baseline.c" -lotr -lgcrypt
${CC:-cc} -O2 -Wall -Wextra -shared -fPIC -o "$here/build/alloc_count.so" "$here/alloc_count.c"
echo "$here/build/baseline"
