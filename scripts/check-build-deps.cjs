// Run by binding.gyp before anything is compiled: a source build without libotr's headers or
// a C++ toolchain stops here with one line naming what to install, not after minutes of
// compiler output. Prints nothing when all is there.
'use strict';
const { execFileSync } = require('node:child_process');

const DEBIAN = 'Debian/Ubuntu: apt-get install libotr5-dev libgcrypt20-dev pkg-config g++ make python3';

function found(command, args) {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function fail(what) {
  process.stderr.write(`protocol-otr: cannot build from source: ${what} (${DEBIAN}; Alpine: apk add libotr-dev g++ make python3 pkgconf)\n`);
  process.exit(1);
}

if (!found('pkg-config', ['--version'])) fail('pkg-config is not installed');
if (!found('pkg-config', ['--exists', 'libotr'])) fail("libotr's headers are not installed (package libotr5-dev)");
const cxx = (process.env.CXX || 'c++').split(' ')[0];
if (!found(cxx, ['--version']) && !found('g++', ['--version'])) fail('no C++ compiler (package g++)');
if (!found('make', ['--version'])) fail('make is not installed');
