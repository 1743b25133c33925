#!/usr/bin/env bash
# Makes (once) the Debian roots the prebuilt binaries are built, loaded and tested in. Run as
# root (debootstrap, chroot).
#
#   scripts/prebuild/debian-root.sh <dir> runtime|x64|arm64|trixie-arm64
#
# Debian 11 "bullseye" (glibc 2.31, libotr 4.1.1, older than every distribution we support, so
# a binary built there loads on them all):
#   runtime  minbase + libotr5 and this machine's Node: what a server without a compiler has
#   x64      runtime + libotr5-dev, g++, make, python3, pkg-config (native build)
#   arm64    runtime + libotr5-dev:arm64 and the aarch64 cross g++ (multiarch), plus
#            Debian's nodejs:arm64 (Node 12) to load the result under qemu
# Debian 13 "trixie" for arm64, every program in it run through qemu-aarch64-static:
#   trixie-arm64  minbase + Debian's nodejs (20.19) and libotr5t64: the arm64 prebuild's demo
#                 and tests run there (debootstrap --foreign, its second stage under qemu)
#
# Packages come from the Debian mirror this machine's apt uses (OTR_DEBIAN_MIRROR overrides
# it). A finished root is marked with .ready and reused; delete <dir> to start over.
set -euo pipefail
usage='usage: debian-root.sh <dir> runtime|x64|arm64|trixie-arm64'
dir=${1:?$usage}
kind=${2:?$usage}
root="$dir/$kind"
[ -e "$root/.ready" ] && { echo "$root"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "debian-root.sh: debootstrap and chroot need root" >&2; exit 1; }

# The first Debian archive URI in apt's sources (deb822 .sources or one-line lists); on a
# machine whose apt reads no Debian archive (Ubuntu), Debian's own.
apt_mirror() {
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | grep -E '/debian/?$' | head -1 || true)
  [ -n "$uri" ] || uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
    awk '{for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' | grep -v security | grep -E '/debian/?$' | head -1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}
mirror=${OTR_DEBIAN_MIRROR:-$(apt_mirror)}

in_root() { chroot "$1" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root DEBIAN_FRONTEND=noninteractive "${@:2}"; }
apt_in() { in_root "$1" apt-get -o Acquire::Retries=3 "${@:2}"; }

mkdir -p "$dir"
case "$kind" in
  runtime)
    command -v debootstrap >/dev/null || { echo "debian-root.sh: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
    rm -rf "$root.tmp"
    echo "debootstrap bullseye from $mirror" >&2
    debootstrap --variant=minbase --include=libotr5 bullseye "$root.tmp" "$mirror" >"$dir/debootstrap.log" 2>&1 ||
      { tail -20 "$dir/debootstrap.log" >&2; exit 1; }
    # Node and its headers from this machine (node-gyp cannot download them here).
    node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
    install -D -m 0755 "$(readlink -f "$(command -v node)")" "$root.tmp/usr/local/bin/node"
    mkdir -p "$root.tmp/usr/local/include"
    cp -a "$node_prefix/include/node" "$root.tmp/usr/local/include/"
    apt_in "$root.tmp" clean
    mv "$root.tmp" "$root"
    ;;
  x64 | arm64)
    runtime=$("$0" "$dir" runtime)
    rm -rf "$root.tmp"
    cp -a "$runtime" "$root.tmp"
    rm -f "$root.tmp/.ready"
    if [ "$kind" = x64 ]; then
      apt_in "$root.tmp" update -qq
      apt_in "$root.tmp" install -y -qq --no-install-recommends libotr5-dev libgcrypt20-dev pkg-config g++ make python3 >/dev/null
    else
      in_root "$root.tmp" dpkg --add-architecture arm64
      apt_in "$root.tmp" update -qq
      apt_in "$root.tmp" install -y -qq --no-install-recommends \
        libotr5-dev:arm64 libgcrypt20-dev:arm64 g++-aarch64-linux-gnu pkg-config make python3 nodejs:arm64 >/dev/null
      bash "$(dirname "$0")/arm64-emulation.sh" "$root.tmp"
    fi
    apt_in "$root.tmp" clean
    mv "$root.tmp" "$root"
    ;;
  trixie-arm64)
    command -v debootstrap >/dev/null || { echo "debian-root.sh: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
    rm -rf "$root.tmp"
    echo "debootstrap trixie arm64 from $mirror (second stage under qemu)" >&2
    debootstrap --arch=arm64 --foreign --variant=minbase --include=nodejs,libotr5t64 trixie "$root.tmp" "$mirror" \
      >"$dir/debootstrap-trixie-arm64.log" 2>&1 || { tail -20 "$dir/debootstrap-trixie-arm64.log" >&2; exit 1; }
    bash "$(dirname "$0")/arm64-emulation.sh" "$root.tmp"
    chroot "$root.tmp" /debootstrap/debootstrap --second-stage >>"$dir/debootstrap-trixie-arm64.log" 2>&1 ||
      { tail -20 "$dir/debootstrap-trixie-arm64.log" >&2; exit 1; }
    apt_in "$root.tmp" clean
    mv "$root.tmp" "$root"
    ;;
  *) echo "debian-root.sh: unknown root '$kind' (runtime, x64, arm64 or trixie-arm64)" >&2; exit 2 ;;
esac
touch "$root/.ready"
echo "$root"
