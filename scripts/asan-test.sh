#!/usr/bin/env bash
# The whole test suite against an ASan+UBSan build of the addon, in both callback modes as
# `npm test` runs it (scripts/run-tests.mjs).
#   scripts/asan-test.sh [test files...]     (default: every test file)
# Builds build-asan/Release/protocol_otr.node with cmake-js (-DOTR_SANITIZE=ON, clang-14)
# and loads it through PROTOCOL_OTR_ADDON in an uninstrumented node with the ASan runtime
# LD_PRELOADed. Leak detection is off here (node itself does not free everything at exit;
# leaks are checked by scripts/fuzz.sh and scripts/valgrind-test.sh). Any ASan or UBSan
# report aborts the process that made it, so the test fails. See docs/RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."
CC="${CC:-clang-14}"
CXX="${CXX:-clang++-14}"
CC="$CC" CXX="$CXX" npm_config_nodedir="${npm_config_nodedir:-$(node -p "require('path').resolve(process.execPath, '../..')")}" \
  npx cmake-js build --out build-asan --CDOTR_SANITIZE=ON >/dev/null
npx tsc -p tsconfig.json
RUNTIME="$("$CXX" -print-file-name=libclang_rt.asan-x86_64.so)"
LOG_DIR="build-asan/logs"
rm -rf "$LOG_DIR" && mkdir -p "$LOG_DIR"
export PROTOCOL_OTR_ADDON="$PWD/build-asan/Release/protocol_otr.node"
export LD_PRELOAD="$RUNTIME"
# alloc_dealloc_mismatch / new_delete_type_mismatch: node's own (uninstrumented) code trips them.
# quarantine_size_mb: freed memory ASan holds back shows as RSS growth in the memory-bound tests
# (the default 256 MB; at 16 MB the 16 MB bound of the prefixed-fragments attack test failed
# once with +19.2 MB), so 4 MB: recent frees are still caught.
export ASAN_OPTIONS="detect_leaks=0:alloc_dealloc_mismatch=0:new_delete_type_mismatch=0:abort_on_error=1:quarantine_size_mb=4:log_path=$PWD/$LOG_DIR/asan:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$PWD/$LOG_DIR/ubsan:${UBSAN_OPTIONS:-}"
status=0
node scripts/run-tests.mjs "$@" || status=$?
if compgen -G "$LOG_DIR/*" >/dev/null; then
  echo "sanitizer reports in $LOG_DIR:" >&2
  cat "$LOG_DIR"/* >&2
  exit 1
fi
echo "asan-test: no ASan/UBSan reports (test run exit status $status)"
exit "$status"
