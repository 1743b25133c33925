#!/usr/bin/env bash
# Installs what protocol-otr needs on a fresh Debian/Ubuntu machine with Node.js 20+:
# libotr's headers and a C++ toolchain (for the addon), then the npm dependencies, which
# builds the addon (node-gyp, when no prebuilt binary fits) and the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

packages=(libotr5-dev libgcrypt20-dev pkg-config g++ make python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

npm install --no-audit --no-fund
