#!/usr/bin/env bash
# Native fuzzing of the addon's receive path (test/fuzz/fuzz_receive.cc) with libFuzzer +
# ASan + UBSan.   scripts/fuzz.sh [seconds] [extra libFuzzer flags...]
#   scripts/fuzz.sh 60                     # the CI pass
#   scripts/fuzz.sh 0 -runs=1000000        # the long run: 1,000,000 inputs
# Needs clang-14 (apt-get install clang-14 libclang-rt-14-dev). Builds into build-fuzz/;
# new corpus entries go to build-fuzz/corpus (the committed seeds in test/fuzz/corpus are
# only read), crashes/leaks to build-fuzz/crash-* / leak-*. See docs/RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-60}"
shift || true
CC="${CC:-clang-14}"
CXX="${CXX:-clang++-14}"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" -DOTR_FUZZ=ON >/dev/null
cmake --build build-fuzz --target fuzz_receive
mkdir -p build-fuzz/corpus
ARGS=(-max_len=4096 -print_final_stats=1 -artifact_prefix=build-fuzz/ -rss_limit_mb=4096)
if [ "$SECONDS_TO_RUN" != "0" ]; then ARGS+=(-max_total_time="$SECONDS_TO_RUN"); fi
# fast_unwind_on_malloc=0: libotr has no frame pointers; the suppressions need full stacks.
export ASAN_OPTIONS="fast_unwind_on_malloc=0:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
exec ./build-fuzz/fuzz_receive "${ARGS[@]}" "$@" build-fuzz/corpus test/fuzz/corpus
