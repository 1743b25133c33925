// What a user of the published package meets before any OTR: the source build's early check
// of its build dependencies, the loader's message when there is no binary, and the publish
// guard that refuses a package without its prebuilt binaries.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO, T, closeAll, tmpdir } from './helpers/harness.mjs';

after(closeAll);

const node = (args, options = {}) => spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000, ...options });

test("a source build without libotr's headers stops at once with one line naming the package", T, () => {
  const script = path.join(REPO, 'scripts', 'check-build-deps.cjs');
  const ok = node([script]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout + ok.stderr, '', 'silent when everything is there');
  const noHeaders = node([script], { env: { ...process.env, PKG_CONFIG_LIBDIR: '/nonexistent', PKG_CONFIG_PATH: '' } });
  assert.equal(noHeaders.status, 1);
  assert.equal(noHeaders.stderr.trim().split('\n').length, 1, noHeaders.stderr);
  assert.match(noHeaders.stderr, /libotr's headers are not installed \(package libotr5-dev\)/);
  const emptyPath = tmpdir('otr-nopath-');
  const noPkgConfig = node([script], { env: { ...process.env, PATH: emptyPath } });
  assert.equal(noPkgConfig.status, 1);
  assert.match(noPkgConfig.stderr, /pkg-config is not installed/);
  const gyp = fs.readFileSync(path.join(REPO, 'binding.gyp'), 'utf8');
  assert.match(gyp, /node scripts\/check-build-deps\.cjs/, 'binding.gyp runs the check first');
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  assert.ok(pkg.files.includes('scripts/check-build-deps.cjs'), 'the check is in the package');
});

test('with no binary at all, new OTR() throws ERR_OTR_ADDON_LOAD saying to run npm rebuild protocol-otr', T, () => {
  // The package's JavaScript, without build/ and prebuilds/, as after npm install --ignore-scripts.
  const dir = tmpdir('otr-nobinary-');
  const pkgDir = path.join(dir, 'node_modules', 'protocol-otr');
  fs.mkdirSync(pkgDir, { recursive: true });
  for (const entry of ['package.json', 'dist', 'esm']) fs.cpSync(path.join(REPO, entry), path.join(pkgDir, entry), { recursive: true });
  for (const dep of ['node-gyp-build', 'node-addon-api']) fs.symlinkSync(path.join(REPO, 'node_modules', dep), path.join(dir, 'node_modules', dep), 'dir');
  const code = `
    const { OTR } = require('protocol-otr');
    try { new OTR({ privkeysFile: 'k', contactsFile: 'f', instanceTagsFile: 'i' }); console.log('loaded'); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const r = node(['-e', code], { cwd: dir, env: { ...process.env, PROTOCOL_OTR_ADDON: '' } });
  assert.equal(r.status, 0, r.stderr);
  const error = JSON.parse(r.stdout);
  assert.equal(error.code, 'ERR_OTR_ADDON_LOAD');
  assert.match(error.message, new RegExp(`no binary for ${process.platform}-${process.arch}`));
  assert.match(error.message, /Run npm rebuild protocol-otr/);
  assert.match(error.message, /libotr5-dev/);
});

test('prepublishOnly refuses a package without the four prebuilt binaries, or with one too new for glibc 2.28', T, () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  assert.equal(pkg.scripts.prepublishOnly, 'node scripts/check-prebuilds.mjs');
  const check = path.join(REPO, 'scripts', 'check-prebuilds.mjs');
  const empty = tmpdir('otr-pub-');
  const none = node([check, empty]);
  assert.equal(none.status, 1);
  for (const target of [
    'linux-x64/protocol-otr.glibc.node',
    'linux-arm64/protocol-otr.glibc.node',
    'linux-x64/protocol-otr.musl.node',
    'linux-arm64/protocol-otr.musl.node',
  ]) {
    assert.match(none.stderr, new RegExp(`prebuilds/${target} is missing`));
  }
  // This machine's own build as the x64 glibc binary: refused when it needs a glibc newer than 2.28.
  const built = path.join(REPO, 'build', 'Release', 'protocol_otr.node');
  const newest = Math.max(
    ...[
      ...fs
        .readFileSync(built)
        .toString('latin1')
        .matchAll(/GLIBC_2\.(\d+)/g),
    ].map((m) => Number(m[1])),
  );
  fs.mkdirSync(path.join(empty, 'prebuilds', 'linux-x64'), { recursive: true });
  fs.copyFileSync(built, path.join(empty, 'prebuilds', 'linux-x64', 'protocol-otr.glibc.node'));
  const one = node([check, empty]);
  assert.equal(one.status, 1);
  assert.doesNotMatch(one.stderr, /linux-x64\/protocol-otr\.glibc\.node is (missing|not)/);
  if (newest > 28) assert.match(one.stderr, new RegExp(`linux-x64/protocol-otr\\.glibc\\.node needs GLIBC_2\\.${newest}`));
  else assert.doesNotMatch(one.stderr, /needs GLIBC/);
  // An x64 binary where the arm64 one belongs is refused too.
  fs.mkdirSync(path.join(empty, 'prebuilds', 'linux-arm64'), { recursive: true });
  fs.copyFileSync(built, path.join(empty, 'prebuilds', 'linux-arm64', 'protocol-otr.glibc.node'));
  assert.match(node([check, empty]).stderr, /linux-arm64\/protocol-otr\.glibc\.node is built for ELF machine 62, not 183/);
});

// A directory of links to the tools a source build uses, without python3: PATH for a machine
// that lacks it and has everything else.
function toolsWithout(missing) {
  const bin = tmpdir('otr-tools-');
  const which = (tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
  for (const tool of ['pkg-config', 'c++', 'g++', 'make', 'cc', 'python3'].filter((t) => !missing.includes(t))) {
    const found = which(tool);
    if (found) fs.symlinkSync(found, path.join(bin, tool));
  }
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  return bin;
}

// The package's install script as npm runs it (in the package's folder, node_modules/.bin on
// PATH), in a copy that has no binary: node-gyp-build finds none and starts a source build.
function runInstallScript({ prebuilds = false, missing }) {
  const pkgDir = tmpdir('otr-install-');
  fs.mkdirSync(path.join(pkgDir, 'scripts'));
  fs.copyFileSync(path.join(REPO, 'package.json'), path.join(pkgDir, 'package.json'));
  fs.copyFileSync(path.join(REPO, 'binding.gyp'), path.join(pkgDir, 'binding.gyp'));
  fs.copyFileSync(path.join(REPO, 'scripts', 'check-build-deps.cjs'), path.join(pkgDir, 'scripts', 'check-build-deps.cjs'));
  fs.mkdirSync(path.join(pkgDir, 'node_modules', '.bin'), { recursive: true });
  fs.symlinkSync(path.join(REPO, 'node_modules', 'node-gyp-build'), path.join(pkgDir, 'node_modules', 'node-gyp-build'), 'dir');
  fs.symlinkSync(path.join('..', 'node-gyp-build', 'bin.js'), path.join(pkgDir, 'node_modules', '.bin', 'node-gyp-build'));
  if (prebuilds) fs.mkdirSync(path.join(pkgDir, 'prebuilds', `${process.platform}-${process.arch}`), { recursive: true });
  const { scripts } = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const PATH = `${path.join(pkgDir, 'node_modules', '.bin')}:${toolsWithout(missing)}`;
  const env = { HOME: process.env.HOME, PATH, npm_config_python: '', PYTHON: '' };
  return spawnSync('/bin/sh', ['-c', scripts.install], { cwd: pkgDir, env, encoding: 'utf8', timeout: 120_000 });
}

test('a source build without python3 stops before node-gyp with our one line naming the package', T, () => {
  const run = runInstallScript({ missing: ['python3'] });
  assert.equal(run.status, 1, run.stdout + run.stderr);
  assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
  assert.match(run.stderr, /^protocol-otr: cannot build from source: python3 is not installed, and node-gyp needs it \(package python3\)/);
  assert.match(run.stderr, /apt-get install libotr5-dev libgcrypt20-dev pkg-config g\+\+ make python3/);
  assert.doesNotMatch(run.stdout + run.stderr, /gyp (info|ERR!)/, 'node-gyp never started');
});

test("a source build started because the prebuilt binary did not load names libotr's run-time package of each distribution", T, () => {
  const run = runInstallScript({ prebuilds: true, missing: ['pkg-config'] });
  assert.equal(run.status, 1, run.stdout + run.stderr);
  assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
  assert.match(run.stderr, /pkg-config is not installed/);
  assert.match(run.stderr, new RegExp(`prebuilt binary for ${process.platform}-${process.arch} did not load`));
  for (const name of ['Debian 11-12 and Ubuntu 20.04-22.04: libotr5;', 'Debian 13 and Ubuntu 24.04 or later: libotr5t64;', 'Alpine: libotr']) {
    assert.ok(run.stderr.includes(name), `${name} in: ${run.stderr}`);
  }
});

test('npm pack without the prebuilt binaries warns, naming npm run prebuild:all, and still packs', T, () => {
  // The real prepack script run by the real npm, in a copy whose only content is the check.
  const dir = tmpdir('otr-pack-');
  fs.mkdirSync(path.join(dir, 'scripts'));
  fs.copyFileSync(path.join(REPO, 'scripts', 'check-prebuilds.mjs'), path.join(dir, 'scripts', 'check-prebuilds.mjs'));
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  const { prepack } = pkg.scripts;
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version, files: ['scripts/'], scripts: { prepack } }));
  const pack = spawnSync('npm', ['pack', '--dry-run'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  assert.equal(pack.status, 0, pack.stderr);
  assert.match(pack.stderr, /protocol-otr: warning: packing without every prebuilt binary/);
  assert.match(pack.stderr, /Run npm run prebuild:all first/);
  assert.match(pack.stderr, /prebuilds\/linux-x64\/protocol-otr\.glibc\.node is missing/);
  assert.match(pack.stdout, /protocol-otr-.*\.tgz/, 'the tarball is still made');
});

test('an addon whose libotr is not installed: ERR_OTR_ADDON_LOAD naming the run-time package of each distribution', T, () => {
  // The real addon with its libotr.so.5 dependency renamed to one no system has: the dynamic
  // loader fails as it does on a server without libotr's run-time package.
  const built = fs.readFileSync(path.join(REPO, 'build', 'Release', 'protocol_otr.node'));
  const needed = Buffer.from('libotr.so.5\0');
  assert.ok(built.includes(needed), 'the addon links libotr.so.5');
  const copy = Buffer.from(built);
  for (let at = copy.indexOf(needed); at !== -1; at = copy.indexOf(needed, at + 1)) copy.write('libotr.so.9', at, 'latin1');
  const dir = tmpdir('otr-nolibotr-');
  const addon = path.join(dir, 'protocol_otr.node');
  fs.writeFileSync(addon, copy);
  const code = `
    const { OTR } = require(${JSON.stringify(path.join(REPO, 'dist', 'index.js'))});
    try { new OTR({ privkeysFile: 'k', contactsFile: 'f', instanceTagsFile: 'i' }); console.log('loaded'); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const r = node(['-e', code], { cwd: dir, env: { ...process.env, PROTOCOL_OTR_ADDON: addon } });
  assert.equal(r.status, 0, r.stderr);
  const error = JSON.parse(r.stdout);
  assert.equal(error.code, 'ERR_OTR_ADDON_LOAD');
  assert.match(error.message, /^protocol-otr needs the system libotr 4\.1: install it/);
  for (const name of [
    'Debian 11-12 and Ubuntu 20.04-22.04: apt-get install libotr5;',
    'Debian 13 and Ubuntu 24.04 or later: apt-get install libotr5t64;',
    'Alpine: apk add libotr',
  ]) {
    assert.ok(error.message.includes(name), `${name} in: ${error.message}`);
  }
  assert.match(error.message, /libotr\.so\.9: cannot open shared object file/);
});
