#!/usr/bin/env bash
# Sets up a checkout of protocol-otr on a Debian/Ubuntu machine with Node.js 20.17 or newer, for
# everything `npm test` runs: libotr's headers and a C++ toolchain (for the addon), the servers
# of the end-to-end and shared-store tests (ngircd, prosody, PostgreSQL's server binaries, and
# iproute2 for the partition test's network namespace; no daemon of theirs is started and no
# database cluster created: the tests start their own, on loopback), the OTR client of the interop test (irssi with irssi-plugin-otr, run under tmux),
# clang-format (npm run format and the style check), then the npm dependencies, which builds the
# addon and the TypeScript.
#   bash scripts/install.sh                  all of it
#   bash scripts/install.sh --library-only   without the test servers and client (their tests
#                                            then skip) and clang-format
# System packages already installed are left alone; the others are installed through sudo
# unless this runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."

with_servers=1
for arg in "$@"; do
  case "$arg" in
    --library-only) with_servers= ;;
    -h | --help)
      sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "scripts/install.sh: unknown option $arg (--library-only leaves out the test servers)" >&2
      exit 2
      ;;
  esac
done

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# sudo resets the environment: DEBIAN_FRONTEND goes through env.
apt_install() { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "$@" >/dev/null; }
not_installed() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

# Their packages would start system-wide daemons listening on every interface, and PostgreSQL's
# would create a database cluster nothing uses: while they install, a policy-rc.d refuses every
# start (when the machine has none) and createcluster.conf says create_main_cluster = false
# (written when absent, and then kept, as on a fresh machine; an existing one gets its content
# back afterwards). A daemon of theirs that started anyway (a machine whose policy allows it) is
# stopped and disabled.
conf=/etc/postgresql-common/createcluster.conf
policy=/usr/sbin/policy-rc.d
saved_conf=
added_policy=
restore() {
  if [ -n "$saved_conf" ]; then as_root mv -f "$saved_conf" "$conf"; fi
  if [ -n "$added_policy" ]; then as_root rm -f "$policy"; fi
  saved_conf= added_policy=
}
install_servers() {
  local daemon
  trap restore EXIT
  if as_root test -e "$conf"; then
    saved_conf="$conf.protocol-otr-saved"
    as_root cp -p "$conf" "$saved_conf"
    echo 'create_main_cluster = false' | as_root tee -a "$conf" >/dev/null
  else
    as_root mkdir -p "$(dirname "$conf")"
    echo 'create_main_cluster = false' | as_root tee "$conf" >/dev/null
  fi
  if ! as_root test -e "$policy"; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod +x "$policy"
    added_policy=1
  fi
  apt_install --no-install-recommends "$@"
  restore
  trap - EXIT
  for daemon in "$@"; do
    case "$daemon" in ngircd | prosody) ;; *) continue ;; esac
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$daemon" 2>/dev/null; then
      as_root systemctl stop "$daemon" && as_root systemctl disable --quiet "$daemon" || true
    fi
    if [ -x "/etc/init.d/$daemon" ] && as_root "/etc/init.d/$daemon" status >/dev/null 2>&1; then
      as_root "/etc/init.d/$daemon" stop || true
    fi
  done
}

mapfile -t build_missing < <(not_installed libotr5-dev libgcrypt20-dev pkg-config g++ make python3)
servers_missing=()
tools_missing=()
if [ -n "$with_servers" ]; then
  mapfile -t servers_missing < <(not_installed ngircd prosody postgresql iproute2 irssi irssi-plugin-otr tmux)
  mapfile -t tools_missing < <(not_installed clang-format)
fi
if [ ${#build_missing[@]} -gt 0 ] || [ ${#servers_missing[@]} -gt 0 ] || [ ${#tools_missing[@]} -gt 0 ]; then as_root apt-get update -qq; fi
if [ ${#build_missing[@]} -gt 0 ]; then
  echo "Installing system packages: ${build_missing[*]}"
  apt_install "${build_missing[@]}"
fi
if [ ${#tools_missing[@]} -gt 0 ]; then
  echo "Installing the formatter of the C++ sources: ${tools_missing[*]}"
  apt_install --no-install-recommends "${tools_missing[@]}"
fi
if [ ${#servers_missing[@]} -gt 0 ]; then
  echo "Installing the test servers and client: ${servers_missing[*]} (no daemon started, no database cluster created)"
  install_servers "${servers_missing[@]}"
fi

npm install --no-audit --no-fund
