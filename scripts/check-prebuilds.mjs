#!/usr/bin/env node
// prepublishOnly: refuses to publish a package that does not carry every prebuilt binary we
// promise, each an ELF shared object for its machine, the glibc ones asking for no symbol
// version newer than glibc 2.28, the oldest Node 20 runs on (RHEL 8, Debian 11, Ubuntu 20.04 load them).
// prepack (--warn): the same check before `npm pack`, which warns and packs anyway: a tarball
// for a machine with a compiler is useful, but its users must know they will build from source.
//   node scripts/check-prebuilds.mjs [--warn] [package dir]
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const warnOnly = args.includes('--warn');
const given = args.filter((a) => a !== '--warn');
const dir = path.resolve(given[0] ?? path.join(path.dirname(new URL(import.meta.url).pathname), '..'));
const TARGETS = [
  { file: 'linux-x64/protocol-otr.glibc.node', machine: 62, how: 'npm run prebuild:all' },
  { file: 'linux-arm64/protocol-otr.glibc.node', machine: 183, how: 'npm run prebuild:all' },
  { file: 'linux-x64/protocol-otr.musl.node', machine: 62, how: 'npm run prebuild:musl on Alpine x64 (the release workflow)' },
  { file: 'linux-arm64/protocol-otr.musl.node', machine: 183, how: 'npm run prebuild:musl on Alpine arm64 (the release workflow)' },
];
const NEWEST_GLIBC = 28;

const problems = [];
for (const { file, machine, how } of TARGETS) {
  const full = path.join(dir, 'prebuilds', file);
  if (!fs.existsSync(full)) {
    problems.push(`prebuilds/${file} is missing (${how})`);
    continue;
  }
  const bytes = fs.readFileSync(full);
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46 || bytes[4] !== 2 || bytes.readUInt16LE(16) !== 3) {
    problems.push(`prebuilds/${file} is not a 64-bit ELF shared object`);
    continue;
  }
  if (bytes.readUInt16LE(18) !== machine) problems.push(`prebuilds/${file} is built for ELF machine ${bytes.readUInt16LE(18)}, not ${machine}`);
  if (file.includes('glibc')) {
    const newest = Math.max(0, ...[...bytes.toString('latin1').matchAll(/GLIBC_2\.(\d+)/g)].map((m) => Number(m[1])));
    if (newest > NEWEST_GLIBC) problems.push(`prebuilds/${file} needs GLIBC_2.${newest}; build it with npm run prebuild:all (it must need glibc 2.28 at most)`);
  }
}
if (problems.length && warnOnly) {
  console.error(
    'protocol-otr: warning: packing without every prebuilt binary. Where none fits, npm install builds the addon ' +
      "from source, which needs a C++ toolchain, python3 and libotr's headers. " +
      `Run npm run prebuild:all first (as root or through sudo) to include them.\n  ${problems.join('\n  ')}`,
  );
  process.exit(0);
}
if (problems.length) {
  console.error(`Refusing to publish: the package must carry every prebuilt binary.\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`prebuilds: ${TARGETS.map((t) => t.file).join(', ')}`);
