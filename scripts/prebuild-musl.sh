#!/bin/sh
# npm run prebuild:musl — on Alpine (the release workflow runs it in node:<version>-alpine
# containers, natively on x64 and arm64): prebuilds/linux-<arch>/node.napi.musl.node against
# Alpine's libotr, linked dynamically (libotr at run time: apk add libotr).
set -eu
cd "$(dirname "$0")/.."
[ -e /etc/alpine-release ] || { echo "prebuild:musl runs on Alpine Linux (musl libc)" >&2; exit 1; }
apk add --no-cache libotr-dev libgcrypt-dev pkgconf g++ make python3 binutils >/dev/null
[ -d node_modules/node-gyp ] || npm install --no-audit --no-fund --ignore-scripts
npx node-gyp rebuild
strip --strip-unneeded build/Release/protocol_otr.node
arch=$(node -p process.arch)
mkdir -p "prebuilds/linux-$arch"
cp build/Release/protocol_otr.node "prebuilds/linux-$arch/node.napi.musl.node"
node -e "const a = require('./prebuilds/linux-$arch/node.napi.musl.node'); if (a.initError) throw new Error(a.initError); console.log('linux-$arch musl: libotr ' + a.libotrVersion)"
