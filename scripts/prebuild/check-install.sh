#!/bin/sh
# Inside a clean node:<version>-alpine or node:<version>-bookworm-slim container (the release
# workflow's check matrix): installs only the system libotr, makes sure no compiler is
# there, installs the packed tarball into a fresh directory, and runs the demo and the CLI
# from it. The prebuilt binary must be chosen: a build from source would fail.
#   sh scripts/prebuild/check-install.sh <tarball>
set -eu
tarball=$(readlink -f "$1")
if [ -e /etc/alpine-release ]; then
  apk add --no-cache libotr >/dev/null
else
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libotr5 >/dev/null
fi
for tool in cc gcc g++ make; do
  if command -v "$tool" >/dev/null; then echo "check-install: $tool is present" >&2; exit 1; fi
done
app=$(mktemp -d)
cd "$app"
npm init -y >/dev/null
npm install --no-audit --no-fund "$tarball"
[ ! -e node_modules/protocol-otr/build ] || { echo "check-install: built from source instead of using the prebuilt binary" >&2; exit 1; }
node node_modules/protocol-otr/examples/demo.mjs
npx --no-install protocol-otr keys generate --dir . bridge@example.org prpl-jabber
npx --no-install protocol-otr keys list --dir . --json
echo "check-install: $(node -p 'process.platform + "-" + process.arch') $(node --version) OK"
