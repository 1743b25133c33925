#!/usr/bin/env bash
# The package as a user gets it: `npm pack`, then `npm install` of the tarball on a Debian 11
# machine (the "runtime" root: glibc 2.31, libotr5 and Node only, no compiler, no make, no
# libotr headers), and the demo and the operator CLI run from the installed package. This
# proves the linux-x64 prebuild is in the tarball, is chosen, and loads on an old glibc.
#
#   scripts/prebuild/check-package.sh [roots dir]     (run as root; after prebuild:all)
set -euo pipefail
cd "$(dirname "$0")/../.."
roots=${1:-${OTR_ROOTS:-build-roots}}
for target in linux-x64 linux-arm64; do
  [ -f "prebuilds/$target/protocol-otr.glibc.node" ] || { echo "check-package: prebuilds/$target is missing: run npm run prebuild:all" >&2; exit 1; }
done
root=$(bash scripts/prebuild/debian-root.sh "$roots" runtime)
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root CI="${CI:-}" "$@"; }

# No compiler and no headers: if the install fell back to building from source, it would fail.
for tool in cc gcc g++ c++ make pkg-config; do
  if in_root sh -c "command -v $tool" >/dev/null; then echo "check-package: $tool is present in $root" >&2; exit 1; fi
done
[ ! -e "$root/usr/include/libotr" ] || { echo "check-package: libotr headers are present in $root" >&2; exit 1; }

# npm (a JavaScript program) from this machine, and the package's dependencies fetched here
# into a cache the install inside the root reads offline.
npm_dir=$(npm root -g)/npm
rm -rf "$root/usr/local/lib/node_modules/npm"
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

rm -rf "$root/check"
mkdir -p "$root/check/app"
tarball=$(npm pack --silent --pack-destination "$root/check")
for dep in $(node -p "Object.entries(require('./package.json').dependencies).map(([n, v]) => n + '@' + v).join(' ')"); do
  npm cache add --cache "$root/check/npm-cache" "$dep" >/dev/null
done
echo "packed $tarball: $(stat -c %s "$root/check/$tarball") bytes, $(tar tzf "$root/check/$tarball" | wc -l) files; $(tar tvzf "$root/check/$tarball" | awk '/prebuilds\/.*\.node$/ {sub("^package/", "", $6); printf "%s%s %s bytes", sep, $6, $3; sep = ", "}')"
in_root sh -c "cd /check/app && npm init -y >/dev/null && npm install --offline --cache /check/npm-cache --no-audit --no-fund --loglevel=error /check/$tarball" ||
  { echo "check-package: npm install of the tarball failed without a compiler" >&2; exit 1; }
[ ! -e "$root/check/app/node_modules/protocol-otr/build" ] || { echo "check-package: the install built from source instead of using the prebuild" >&2; exit 1; }
installed=/check/app/node_modules/protocol-otr
chosen=$(in_root node -e "console.log(require('/check/app/node_modules/node-gyp-build').path('$installed'))")
[ "$chosen" = "$installed/prebuilds/linux-x64/protocol-otr.glibc.node" ] ||
  { echo "check-package: node-gyp-build chose $chosen, not prebuilds/linux-x64/protocol-otr.glibc.node" >&2; exit 1; }
echo "node-gyp-build chose ${chosen#"$installed/"}"
in_root sh -c "cd /check/app && node node_modules/protocol-otr/examples/demo.mjs" >"$roots/check-demo.log" 2>&1 ||
  { cat "$roots/check-demo.log" >&2; echo "check-package: the demo failed from the installed package" >&2; exit 1; }
tail -3 "$roots/check-demo.log"
in_root sh -c "cd /check/app && mkdir -p keys && npx --no-install protocol-otr keys generate --dir keys bridge@example.org prpl-jabber && npx --no-install protocol-otr keys list --dir keys --json" ||
  { echo "check-package: the CLI failed from the installed package" >&2; exit 1; }
# A binary built on this (newer) machine, loaded on Debian 11: the error says the C library is
# too old and how to build from source.
host_build=build/Release/protocol_otr.node
if [ -f "$host_build" ] && grep -aqE 'GLIBC_2\.(3[2-9]|[4-9][0-9])' "$host_build"; then
  cp "$host_build" "$root/check/newer-glibc.node"
  message=$(in_root sh -c "cd /check/app && PROTOCOL_OTR_ADDON=/check/newer-glibc.node node -e \"
    const { OTR } = require('protocol-otr');
    try { new OTR({ privkeysFile: 'k', contactsFile: 'f', instanceTagsFile: 'i' }); } catch (e) { console.log(e.code + ': ' + e.message); }\"")
  case "$message" in
    "ERR_OTR_ADDON_LOAD: "*"needs a newer C library"*"npm rebuild protocol-otr --build-from-source"*) echo "too-old glibc: ${message:0:160}…" ;;
    *) echo "check-package: loading a binary that needs a newer glibc said: $message" >&2; exit 1 ;;
  esac
fi
echo "check-package: the tarball installs and runs on Debian 11 (glibc $(in_root ldd --version | head -1 | awk '{print $NF}')) without a compiler"
