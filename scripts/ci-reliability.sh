#!/usr/bin/env bash
# The short forms of the reliability runs, for CI (docs/RELIABILITY.md has the long ones):
# native fuzzing of the receive path (60 s), the JS-level fuzzer (20,000 inputs), the whole
# test suite against an ASan+UBSan build, and a focused set of test files under valgrind.
# Installs what it needs (clang-14 and its sanitizer runtimes, cmake, valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
packages=(clang-14 libclang-rt-14-dev cmake valgrind)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

mkdir -p build-ci
step() { printf '\n== %s\n' "$*"; }
# Runs a step with its output in build-ci/NAME.log; shows the tail, fails with the step.
logged() {
  local name=$1
  shift
  if "$@" >"build-ci/$name.log" 2>&1; then
    tail -n "${TAIL:-6}" "build-ci/$name.log"
  else
    local rc=$?
    tail -n 40 "build-ci/$name.log"
    echo "ci-reliability: $name failed (exit $rc)" >&2
    exit "$rc"
  fi
}

step "native fuzzing: fuzz_receive, 60 s"
logged fuzz bash scripts/fuzz.sh 60
step "JS fuzzing: 20,000 mutated messages through channel.read()"
logged js-fuzz node test/fuzz/js-fuzz.mjs 20000
step "test suite with ASan + UBSan"
TAIL=12 logged asan bash scripts/asan-test.sh
step "valgrind memcheck"
logged valgrind bash scripts/valgrind-test.sh
