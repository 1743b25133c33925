#!/usr/bin/env bash
# npm run prebuild:all — the prebuilt binaries the package ships, made the same way on any
# Debian/Ubuntu machine (as root, or with sudo), in CI and in the release workflow, with
# `prebuildify --napi --strip --tag-libc` (scripts/prebuild/build.sh):
#
#   prebuilds/linux-x64/protocol-otr.glibc.node     built in Debian 11 (glibc 2.31)
#   prebuilds/linux-arm64/protocol-otr.glibc.node   cross-built in Debian 11, loaded there
#                                                   under qemu
#
# Both link the system libotr.so.5 (libotr5 or libotr5t64 at run time). Then the arm64 one
# runs the demo and tests on Debian 13 arm64 under qemu (scripts/prebuild/test-arm64.sh). The
# Debian roots are made once with debootstrap into build-roots/ (OTR_ROOTS overrides) and
# reused. OTR_PREBUILD_ARCHES=x64 makes only the x64 binary. musl binaries are made by the
# release workflow on Alpine (.github/workflows/release.yml: npm run prebuild:musl).
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
roots=${OTR_ROOTS:-build-roots}
arches=${OTR_PREBUILD_ARCHES:-x64 arm64}
started=$SECONDS

missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
if [[ " $arches " == *" arm64 "* ]]; then
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  command -v update-binfmts >/dev/null || missing+=(binfmt-support)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -d node_modules/node-gyp ] && [ -d node_modules/prebuildify ] || npm install --no-audit --no-fund
[[ " $arches " != *" arm64 "* ]] || as_root bash scripts/prebuild/arm64-emulation.sh
for arch in $arches; do
  as_root bash scripts/prebuild/build.sh "$roots" "$arch"
done
if [[ " $arches " == *" arm64 "* ]]; then
  npx --no-install tsc -p tsconfig.json
  as_root bash scripts/prebuild/test-arm64.sh "$roots"
fi
echo "prebuild:all: done in $((SECONDS - started)) s"
