#!/usr/bin/env bash
# npm run prebuild:all — the prebuilt binaries the package ships, made the same way on any
# Debian/Ubuntu machine (as root, or with sudo) and in the release workflow:
#
#   prebuilds/linux-x64/node.napi.glibc.node     built in Debian 11 (glibc 2.31)
#   prebuilds/linux-arm64/node.napi.glibc.node   cross-built in Debian 11, loaded under qemu
#
# Both link the system libotr.so.5 (libotr5 at run time). The Debian 11 roots are made once
# with debootstrap into build-roots/ (OTR_ROOTS overrides) and reused. musl binaries are made
# by the release workflow on Alpine (.github/workflows/release.yml: npm run prebuild:musl).
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
roots=${OTR_ROOTS:-build-roots}

missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -d node_modules/node-gyp ] || npm install --no-audit --no-fund
for arch in ${OTR_PREBUILD_ARCHES:-x64 arm64}; do
  as_root bash scripts/prebuild/build.sh "$roots" "$arch"
done
