#!/usr/bin/env bash
# Makes the kernel run arm64 programs through qemu-aarch64-static (binfmt_misc), so that
# `chroot <arm64 root> node …` works on an x64 machine: the second debootstrap stage of the
# Debian 13 arm64 root, and every arm64 Node run by the prebuild scripts. Idempotent; run as
# root after qemu-user-static is installed (scripts/prebuild-all.sh installs it).
#
#   scripts/prebuild/arm64-emulation.sh [root]
#
# Where systemd-binfmt or binfmt-support has registered qemu-aarch64 already this only checks
# it. Otherwise (a container or a machine without systemd) it mounts binfmt_misc and registers
# the entry qemu-user-static ships, whose F flag lets the kernel find qemu inside any chroot.
set -euo pipefail
binfmt=/proc/sys/fs/binfmt_misc
[ "$(uname -m)" = aarch64 ] && exit 0
[ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" ||
  { echo "arm64-emulation.sh: cannot mount binfmt_misc (root with CAP_SYS_ADMIN is needed)" >&2; exit 1; }
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  entry=$(ls /usr/lib/binfmt.d/qemu-aarch64.conf 2>/dev/null || true)
  if [ -n "$entry" ]; then
    cat "$entry" >"$binfmt/register"
  elif command -v update-binfmts >/dev/null; then
    update-binfmts --enable qemu-aarch64
  fi
fi
[ -e "$binfmt/qemu-aarch64" ] || { echo "arm64-emulation.sh: qemu-aarch64 is not registered (apt-get install qemu-user-static)" >&2; exit 1; }
[ "$(head -1 "$binfmt/qemu-aarch64")" = enabled ] || echo 1 >"$binfmt/qemu-aarch64"
# Without the F flag the kernel looks for the interpreter inside the chroot: a root given as
# the argument gets a copy of it at the same path.
root=${1:-}
if [ -n "$root" ] && ! grep -q '^flags:.*F' "$binfmt/qemu-aarch64"; then
  interpreter=$(awk '/^interpreter/ {print $2}' "$binfmt/qemu-aarch64")
  install -D -m 0755 "$(readlink -f "$interpreter")" "$root$interpreter"
fi
