// Run before the addon is built from source: by npm's install script (node-gyp-build runs it
// only when no binary fits, before node-gyp, which needs Python itself) and by binding.gyp
// (a build started by hand). A source build without libotr's headers, Python or a C++
// toolchain stops here with one line naming what to install, not after minutes of compiler
// output or with node-gyp's own error. Prints nothing when all is there.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const DEBIAN = 'Debian/Ubuntu: apt-get install libotr5-dev libgcrypt20-dev pkg-config g++ make python3';
const ALPINE = 'Alpine: apk add libotr-dev g++ make python3 pkgconf';
const RUNTIME = 'Debian 11-12 and Ubuntu 20.04-22.04: libotr5; Debian 13 and Ubuntu 24.04 or later: libotr5t64; Alpine: libotr';

function found(command, args) {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// A prebuilt binary for this platform that node-gyp-build could not load is why a source build
// was started: most often libotr's run-time package is missing, and installing it is enough.
function prebuiltHint() {
  const dir = path.join(__dirname, '..', 'prebuilds', `${process.platform}-${process.arch}`);
  if (!fs.existsSync(dir)) return '';
  return `. The prebuilt binary for ${process.platform}-${process.arch} did not load: if libotr's run-time package is missing (${RUNTIME}), install it and run npm install again, and nothing is built`;
}

function fail(what) {
  process.stderr.write(`protocol-otr: cannot build from source: ${what} (${DEBIAN}; ${ALPINE})${prebuiltHint()}\n`);
  process.exit(1);
}

// node-gyp's own search: --python (npm_config_python), $PYTHON, then python3 and python.
const pythons = [process.env.npm_config_python, process.env.PYTHON, 'python3', 'python'].filter(Boolean);
const python3 = (command) => found(command, ['-c', 'import sys; sys.exit(0 if sys.version_info >= (3, 6) else 1)']);

if (!found('pkg-config', ['--version'])) fail('pkg-config is not installed');
if (!found('pkg-config', ['--exists', 'libotr'])) fail("libotr's headers are not installed (package libotr5-dev)");
const cxx = (process.env.CXX || 'c++').split(' ')[0];
if (!found(cxx, ['--version']) && !found('g++', ['--version'])) fail('no C++ compiler (package g++)');
if (!found('make', ['--version'])) fail('make is not installed');
if (!pythons.some(python3)) fail('python3 is not installed, and node-gyp needs it (package python3)');
