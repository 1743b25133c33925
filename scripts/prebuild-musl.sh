#!/bin/sh
# npm run prebuild:musl — on Alpine (the release workflow runs it in node:<version>-alpine
# containers, natively on x64 and arm64): prebuilds/linux-<arch>/protocol-otr.musl.node against
# Alpine's libotr, linked dynamically (libotr at run time: apk add libotr), made by
# `prebuildify --napi --strip --tag-libc` like the glibc ones (scripts/prebuild/build.sh).
set -eu
cd "$(dirname "$0")/.."
[ -e /etc/alpine-release ] || { echo "prebuild:musl runs on Alpine Linux (musl libc)" >&2; exit 1; }
apk add --no-cache libotr-dev libgcrypt-dev pkgconf g++ make python3 binutils >/dev/null
[ -d node_modules/node-gyp ] && [ -d node_modules/prebuildify ] || npm install --no-audit --no-fund --ignore-scripts
# The headers of the Node that runs this (the node images install them): node-gyp then
# downloads nothing.
prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
[ ! -e "$prefix/include/node/node_api.h" ] || export npm_config_nodedir="$prefix"
arch=$(node -p process.arch)
out="prebuilds/linux-$arch"
name=protocol-otr.musl.node
rm -f "$out/$name"
node node_modules/prebuildify/bin.js --napi --strip --tag-libc --target "$(node -p process.versions.node)"
[ -f "$out/$name" ] || { echo "prebuild:musl: prebuildify did not make $out/$name: $(ls "$out")" >&2; exit 1; }
# Names an older layout used (node.napi.musl.node): node-gyp-build would find both.
for old in "$out"/*.musl.node; do [ "$old" = "$out/$name" ] || rm -f "$old"; done
# node-gyp-build picks it from a folder holding only prebuilds/, as npm installs the package.
probe=$(mktemp -d)
mkdir -p "$probe/$out"
cp "$out/$name" "$probe/$out/"
node -e "const load = require('node-gyp-build'); const a = load('$probe'); if (a.initError) throw new Error(a.initError);
  console.log(require('path').relative('$probe', load.path('$probe')) + ': ' + require('fs').statSync('$out/$name').size + ' bytes, libotr ' + a.libotrVersion)"
rm -rf "$probe"
