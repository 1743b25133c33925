#!/usr/bin/env bash
# The arm64 prebuild at work on arm64: in a Debian 13 arm64 root (debian-root.sh trixie-arm64:
# Debian's nodejs 20.19 and libotr5t64, every program run through qemu-aarch64-static) the
# package as npm installs it — its JavaScript and prebuilds/, no build/ — loads
# prebuilds/linux-arm64/protocol-otr.glibc.node through node-gyp-build, then runs the demo and
# a subset of the tests in both callback modes (scripts/run-tests.mjs). Run as root, after
# build.sh arm64 and tsc:
#
#   scripts/prebuild/test-arm64.sh <roots dir>
#
# OTR_ARM64_TESTS replaces the test files (default: test/channel.test.mjs
# test/objects.test.mjs, the Channel and the objects' public API over real libotr).
set -euo pipefail
cd "$(dirname "$0")/../.."
roots=${1:?usage: test-arm64.sh <roots dir>}
tests=${OTR_ARM64_TESTS:-test/channel.test.mjs test/objects.test.mjs}
binary=prebuilds/linux-arm64/protocol-otr.glibc.node
[ -f "$binary" ] || { echo "test-arm64.sh: $binary is missing: run scripts/prebuild/build.sh $roots arm64" >&2; exit 1; }
[ -f dist/index.js ] || { echo "test-arm64.sh: dist/ is missing: run npx tsc -p tsconfig.json" >&2; exit 1; }
bash scripts/prebuild/arm64-emulation.sh
started=$SECONDS
root=$(bash scripts/prebuild/debian-root.sh "$roots" trixie-arm64)
echo "arm64: Debian 13 arm64 root ready in $((SECONDS - started)) s"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root CI="${CI:-}" "$@"; }

# The package folder: what npm installs (package.json, dist/, esm/, prebuilds/, the runtime
# dependencies) plus the tests, their runner and the demo.
pkg=/check/protocol-otr
rm -rf "$root/check"
mkdir -p "$root$pkg/prebuilds/linux-arm64" "$root$pkg/node_modules" "$root$pkg/scripts"
cp -a package.json dist esm examples test "$root$pkg/"
rm -f "$root$pkg/dist/.tsbuildinfo"
cp "$binary" "$root$pkg/prebuilds/linux-arm64/"
cp scripts/run-tests.mjs "$root$pkg/scripts/"
for dep in $(node -p "Object.keys(require('./package.json').dependencies).join(' ')"); do
  cp -a "node_modules/$dep" "$root$pkg/node_modules/"
done
chosen=$(in_root node -e "console.log(require('$pkg/node_modules/node-gyp-build').path('$pkg'))")
[ "$chosen" = "$pkg/$binary" ] || { echo "test-arm64.sh: node-gyp-build chose $chosen, not $pkg/$binary" >&2; exit 1; }
echo "arm64: node-gyp-build chose $binary ($(in_root uname -m), Node $(in_root node --version), libotr5t64 $(in_root dpkg-query -W -f '${Version}' libotr5t64))"

started=$SECONDS
in_root sh -c "cd $pkg && node examples/demo.mjs" >"$roots/arm64-demo.log" 2>&1 ||
  { cat "$roots/arm64-demo.log" >&2; echo "test-arm64.sh: the demo failed on arm64" >&2; exit 1; }
tail -2 "$roots/arm64-demo.log"
echo "arm64: the demo ran in $((SECONDS - started)) s"

started=$SECONDS
# shellcheck disable=SC2086 # the list of test files is split into words on purpose
in_root sh -c "cd $pkg && node scripts/run-tests.mjs $tests" >"$roots/arm64-tests.log" 2>&1 ||
  { tail -60 "$roots/arm64-tests.log" >&2; echo "test-arm64.sh: tests failed on arm64 (the whole output: $roots/arm64-tests.log)" >&2; exit 1; }
grep -E "^== mode|^tests:" "$roots/arm64-tests.log"
echo "arm64: $tests ran in $((SECONDS - started)) s"
