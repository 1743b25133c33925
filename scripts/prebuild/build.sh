#!/usr/bin/env bash
# Builds one prebuilt binary with prebuildify inside a Debian 11 root (see debian-root.sh),
# checks what it needs from the system, loads it there through node-gyp-build, and copies it to
# prebuilds/linux-<arch>/ under prebuildify's name (protocol-otr.glibc.node):
#
#   scripts/prebuild/build.sh <roots dir> x64|arm64
#
# `prebuildify --napi --strip --tag-libc`: one binary for every Node with N-API 8, stripped,
# tagged with the C library node-gyp-build must find. x64 is a native build with bullseye's
# g++ 10; arm64 a cross build with g++-aarch64-linux-gnu against libotr5-dev:arm64, loaded with
# Debian's nodejs:arm64 under qemu (scripts/prebuild/arm64-emulation.sh). Both link the system
# libotr.so.5 dynamically and may ask for no glibc symbol newer than 2.28, where Node 20 runs
# (checked below from the symbol versions).
set -euo pipefail
cd "$(dirname "$0")/../.."
roots=${1:?usage: build.sh <roots dir> x64|arm64}
arch=${2:?usage: build.sh <roots dir> x64|arm64}
case "$arch" in x64 | arm64) ;; *) echo "build.sh: unknown arch '$arch' (x64 or arm64)" >&2; exit 2 ;; esac
started=$SECONDS
root=$(bash scripts/prebuild/debian-root.sh "$roots" "$arch")
echo "prebuild $arch: Debian 11 root ready in $((SECONDS - started)) s"
stage="$root/build/protocol-otr"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root "$@"; }

# The sources binding.gyp compiles (the top folders they are in, so headers and moves within
# them come along), the package's name for prebuildify, and the npm dependencies node-gyp
# needs, copied in (no bind mounts needed).
rm -rf "$stage"
mkdir -p "$stage/scripts"
cp -a binding.gyp package.json "$stage/"
for top in $(python3 -c "import ast, os; gyp = ast.literal_eval(open('binding.gyp').read())
print(' '.join(sorted({os.path.normpath(s).split('/')[0] for t in gyp['targets'] for s in t['sources']})))"); do
  cp -a "$top" "$stage/"
done
cp -a "$(readlink -f node_modules)" "$stage/node_modules"
cp scripts/check-build-deps.cjs "$stage/scripts/"

# node-gyp compiles against the Node headers the root has (no download); prebuildify names the
# binary after the package and its libc, strips it, and moves it to prebuilds/linux-<arch>/.
env=(npm_config_nodedir=/usr/local JOBS="$(nproc)")
prebuildify=(node node_modules/prebuildify/bin.js --napi --strip --tag-libc --target "$(in_root node -p process.versions.node)")
if [ "$arch" = x64 ]; then
  objdump=objdump
else
  env+=(CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar
    PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig PREBUILD_STRIP_BIN=aarch64-linux-gnu-strip)
  prebuildify+=(--arch arm64)
  objdump=aarch64-linux-gnu-objdump
fi
started=$SECONDS
in_root sh -c "cd /build/protocol-otr && ${env[*]} ${prebuildify[*]}" >"$roots/build-$arch.log" 2>&1 ||
  { tail -30 "$roots/build-$arch.log" >&2; exit 1; }
built=$(cd "$stage" && ls prebuilds/linux-"$arch"/*.node)
[ "$(echo "$built" | wc -l)" = 1 ] || { echo "build.sh: prebuildify made more than one binary: $built" >&2; exit 1; }
name=$(basename "$built")
[ "$name" = protocol-otr.glibc.node ] || { echo "build.sh: prebuildify named the binary $name, not protocol-otr.glibc.node" >&2; exit 1; }
echo "prebuild $arch: prebuildify took $((SECONDS - started)) s"
binary=/build/protocol-otr/$built

# What the binary needs from the system: libotr.so.5 (dynamic, never vendored) and glibc
# symbol versions no newer than 2.28.
needed=$(in_root "$objdump" -p "$binary" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')
case " $needed " in *" libotr.so.5 "*) ;; *) echo "build.sh: $arch binary does not link libotr.so.5 (needs: $needed)" >&2; exit 1 ;; esac
symbols=$(in_root "$objdump" -T "$binary")
glibc=$(echo "$symbols" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
glibcxx=$(echo "$symbols" | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)
# Node 20 itself runs on glibc 2.28 (RHEL 8 and its rebuilds): so must the binary.
glibc_minor=${glibc#GLIBC_2.}
if [ "${glibc_minor%%.*}" -gt 28 ]; then
  echo "build.sh: the $arch binary needs $glibc, newer than glibc 2.28 (RHEL 8), where Node 20 runs: $(echo "$symbols" | grep "$glibc" | awk '{print $NF}' | tr '\n' ' ')" >&2
  exit 1
fi

# node-gyp-build picks it from a package folder holding only prebuilds/ (as npm installs it)
# and loads it on glibc 2.31: the addon initialises libotr and reports its version. The binary
# is linked with -z now, so every symbol it needs is bound here, not at first use.
probe_dir=/build/load
rm -rf "$root$probe_dir"
mkdir -p "$root$probe_dir/prebuilds/linux-$arch" "$root$probe_dir/node_modules"
cp "$root$binary" "$root$probe_dir/prebuilds/linux-$arch/"
cp -a "$stage/node_modules/node-gyp-build" "$root$probe_dir/node_modules/"
probe="const load = require('$probe_dir/node_modules/node-gyp-build'); const a = load('$probe_dir');
  if (a.initError) throw new Error(a.initError);
  console.log(require('path').relative('$probe_dir', load.path('$probe_dir')) + ', libotr ' + a.libotrVersion + ', Node ' + process.version)"
if [ "$arch" = x64 ]; then
  loaded=$(in_root node -e "$probe")
else
  loaded="$(in_root /usr/bin/node -e "$probe") under qemu-aarch64"
fi

out="prebuilds/linux-$arch"
mkdir -p "$out"
# Names an older layout used (node.napi.glibc.node): node-gyp-build would find both.
find "$out" -maxdepth 1 -name '*.glibc.node' ! -name "$name" -delete
cp "$root$binary" "$out/$name"
echo "prebuild $arch: $out/$name, $(stat -c %s "$out/$name") bytes, needs ${needed}(${glibc}, ${glibcxx:-no GLIBCXX}); node-gyp-build on Debian 11 loaded $loaded"
