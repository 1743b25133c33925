#!/bin/sh
# Build the C baseline: bench/c/build/baseline (the build directory is git-ignored).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/build"
${CC:-cc} -O2 -Wall -Wextra -o "$here/build/baseline" "$here/baseline.c" -lotr -lgcrypt
echo "$here/build/baseline"
