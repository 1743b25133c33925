#!/usr/bin/env bash
# Test files under valgrind memcheck, one node process per file (run directly with node,
# not through `node --test`, so valgrind sees the process that loads the addon).
#   scripts/valgrind-test.sh                 # the focused default set (CI)
#   scripts/valgrind-test.sh test/*.test.mjs # the whole suite (hours: node under valgrind)
# Uses the normal node-gyp build (build/Release) unless PROTOCOL_OTR_ADDON is set. Fails on
# any memcheck error or "definitely lost" block not in scripts/valgrind.supp; "possibly
# lost"/"still reachable" (V8's heap, node's and libgcrypt's globals at exit) are not
# errors. Logs: build-valgrind/*.log. See docs/RELIABILITY.md.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 0 ] && set -- test/symkey.test.mjs test/sessions.test.mjs test/bad-input.test.mjs
mkdir -p build-valgrind && rm -f build-valgrind/*.log
status=0
for file in "$@"; do
  name="$(basename "$file" .mjs)"
  # --smc-check: V8 generates code at run time.
  valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --smc-check=all-non-file --suppressions=scripts/valgrind.supp --error-exitcode=99 \
    --log-file="build-valgrind/$name.%p.log" node "$file" >"build-valgrind/$name.out" 2>&1
  rc=$?
  summary="$(grep -h -E 'definitely lost:|ERROR SUMMARY' build-valgrind/$name.*.log | sed 's/==[0-9]*== //' | tr '\n' ' ')"
  echo "$file: exit $rc; $summary"
  if [ $rc -ne 0 ]; then status=1; fi
done
exit $status
