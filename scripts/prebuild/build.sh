#!/usr/bin/env bash
# Builds one prebuilt binary inside a Debian 11 root (see debian-root.sh) and checks that it
# loads there, then copies it to prebuilds/<platform>-<arch>/node.napi.glibc.node:
#
#   scripts/prebuild/build.sh <roots dir> x64|arm64
#
# x64 is a native build with bullseye's g++ 10; arm64 a cross build with
# g++-aarch64-linux-gnu against libotr5-dev:arm64, loaded under qemu-aarch64 with Debian's
# nodejs:arm64. Both link the system libotr.so.5 dynamically and may ask for no glibc symbol
# newer than 2.28, where Node 20 runs (checked below from the symbol versions).
set -euo pipefail
cd "$(dirname "$0")/../.."
roots=${1:?usage: build.sh <roots dir> x64|arm64}
arch=${2:?usage: build.sh <roots dir> x64|arm64}
root=$(bash scripts/prebuild/debian-root.sh "$roots" "$arch")
stage="$root/build/protocol-otr"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root "$@"; }

# The sources and the npm dependencies node-gyp needs, copied in (no bind mounts needed).
rm -rf "$stage"
mkdir -p "$stage"
mkdir -p "$stage/scripts"
cp -a binding.gyp package.json src-native "$stage/"
cp -a "$(readlink -f node_modules)" "$stage/node_modules"
cp scripts/check-build-deps.cjs "$stage/scripts/"

gyp=(node /build/protocol-otr/node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir=/usr/local --jobs="$(nproc)")
case "$arch" in
  x64)
    in_root sh -c "cd /build/protocol-otr && ${gyp[*]}" >"$roots/build-x64.log" 2>&1 || { tail -30 "$roots/build-x64.log" >&2; exit 1; }
    strip=strip objdump=objdump
    ;;
  arm64)
    cross=(CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar
      PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
    in_root sh -c "cd /build/protocol-otr && ${cross[*]} ${gyp[*]} --arch=arm64" >"$roots/build-arm64.log" 2>&1 ||
      { tail -30 "$roots/build-arm64.log" >&2; exit 1; }
    strip=aarch64-linux-gnu-strip objdump=aarch64-linux-gnu-objdump
    ;;
  *) echo "build.sh: unknown arch '$arch' (x64 or arm64)" >&2; exit 2 ;;
esac
binary=/build/protocol-otr/build/Release/protocol_otr.node
in_root "$strip" --strip-unneeded "$binary"

# What the binary needs from the system: libotr.so.5 (dynamic, never vendored) and glibc
# symbol versions no newer than 2.28.
needed=$(in_root sh -c "$objdump -p $binary" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')
case " $needed " in *" libotr.so.5 "*) ;; *) echo "build.sh: $arch binary does not link libotr.so.5 (needs: $needed)" >&2; exit 1 ;; esac
glibc=$(in_root sh -c "$objdump -T $binary" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
glibcxx=$(in_root sh -c "$objdump -T $binary" | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)
# Node 20 itself runs on glibc 2.28 (RHEL 8 and its rebuilds): so must the binary.
glibc_minor=${glibc#GLIBC_2.}
if [ "${glibc_minor%%.*}" -gt 28 ]; then
  echo "build.sh: the $arch binary needs $glibc, newer than glibc 2.28 (RHEL 8), where Node 20 runs: $(in_root sh -c "$objdump -T $binary" | grep "$glibc" | awk '{print $NF}' | tr '\n' ' ')" >&2
  exit 1
fi

# Loads it in the root: the addon initialises libotr, starts a worker on empty files, takes
# and releases a file lock, and reports libotr's version.
probe="const a = require('$binary'); if (a.initError) throw new Error(a.initError);
  const h = new a.Handle(1, () => {}, '/tmp/probe.key', '/tmp/probe.fp', '/tmp/probe.tags'); h.dispose();
  a.unlockFile(a.lockFile('/tmp/probe.lock')); console.log('libotr ' + a.libotrVersion)"
if [ "$arch" = x64 ]; then
  loaded=$(in_root node -e "$probe")
elif [ -x "$root/usr/local/bin/qemu-aarch64-static" ]; then
  loaded=$(in_root /usr/local/bin/qemu-aarch64-static /usr/bin/node -e "$probe")" (qemu-aarch64, Debian nodejs $(in_root /usr/local/bin/qemu-aarch64-static /usr/bin/node --version))"
else
  loaded="not load-tested (no qemu-aarch64-static on this machine)"
fi

out="prebuilds/linux-$arch"
mkdir -p "$out"
cp "$root$binary" "$out/node.napi.glibc.node"
echo "linux-$arch glibc: $out/node.napi.glibc.node, $(stat -c %s "$out/node.napi.glibc.node") bytes, needs ${needed}(${glibc}, ${glibcxx:-no GLIBCXX}); loaded: $loaded"
