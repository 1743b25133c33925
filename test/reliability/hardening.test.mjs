// What a local setup can get wrong, refused with a message that says the fix: a private key
// others can read, reached through a symbolic link or owned by another user; a fingerprints or
// instance-tags file others can write or another user owns; a libotr older than 4.1.1 (or
// not 4.1) at run time; a value-returning callback written as an async function.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { PROTO, REPO, T, cannotRun, closeAll, filesIn, makeSecure, Net, openOTR, tmpdir, writeKeyFile } from '../helpers/harness.mjs';

after(closeAll);

function constructorError(files) {
  try {
    openOTR(files);
  } catch (error) {
    return error;
  }
  return undefined;
}

test('a private key readable by group or others is refused with the chmod to run; 0600 and 0400 load', T, async () => {
  const dir = tmpdir();
  const file = await writeKeyFile(dir, ['alice@example.org']);
  for (const mode of [0o644, 0o640, 0o604, 0o660, 0o601]) {
    fs.chmodSync(file, mode);
    const error = constructorError(dir);
    assert.equal(error?.code, 'ERR_OTR_PRIVKEY_FILE', `mode ${mode.toString(8)}`);
    assert.ok(error.message.includes(`chmod 600 ${file}`), error.message);
  }
  for (const mode of [0o600, 0o400]) {
    fs.chmodSync(file, mode);
    const otr = openOTR(dir);
    assert.ok(otr.findAccount('alice@example.org', PROTO), `mode ${mode.toString(8)} loads`);
    await otr.close(); // one instance per file set at a time (the lock)
  }
});

test('a private key reached through a symbolic link is refused; the file it points to is left alone', T, async () => {
  const real = tmpdir();
  const file = await writeKeyFile(real, ['alice@example.org']);
  const dir = tmpdir();
  fs.symlinkSync(file, filesIn(dir).privkeysFile);
  const before = fs.readFileSync(file);
  const error = constructorError(dir);
  assert.equal(error?.code, 'ERR_OTR_PRIVKEY_FILE');
  assert.match(error.message, /symbolic link/);
  assert.deepEqual(fs.readFileSync(file), before);
  // The other two files are not followed either.
  fs.rmSync(filesIn(dir).privkeysFile);
  fs.copyFileSync(file, filesIn(dir).privkeysFile);
  fs.writeFileSync(path.join(real, 'fingerprints'), '');
  fs.symlinkSync(path.join(real, 'fingerprints'), filesIn(dir).contactsFile);
  assert.equal(constructorError(dir)?.code, 'ERR_OTR_FINGERPRINTS_FILE');
});

test('a private key owned by another user is refused with the chown to run', T, async (t) => {
  if (process.getuid() !== 0) return cannotRun(t, "changing a file's owner needs root");
  const dir = tmpdir();
  const file = await writeKeyFile(dir, ['alice@example.org']);
  fs.chownSync(file, 65534, 65534);
  const error = constructorError(dir);
  assert.equal(error?.code, 'ERR_OTR_PRIVKEY_FILE');
  assert.match(error.message, /belongs to uid 65534/);
  assert.ok(error.message.includes(`chown 0 ${file}`), error.message);
});

// A fingerprints line marks a contact's key verified, an instance-tags line picks the tag
// peers see: whoever can write either file can plant one. Only write access matters (libotr
// writes both files world-readable under the usual umask).
const SHARED = { contactsFile: 'ERR_OTR_FINGERPRINTS_FILE', instanceTagsFile: 'ERR_OTR_INSTAG_FILE' };
const PLANTED_HEX = '0123456789abcdef0123456789abcdef01234567';

async function dirWithPlantedLines() {
  const dir = tmpdir();
  await writeKeyFile(dir, ['alice@example.org']);
  const files = filesIn(dir);
  fs.writeFileSync(files.contactsFile, `mallory@example.org\talice@example.org\t${PROTO}\t${PLANTED_HEX}\tverified\n`);
  fs.writeFileSync(files.instanceTagsFile, `alice@example.org\t${PROTO}\t1a2b3c4d\n`);
  for (const file of Object.values(files)) fs.chmodSync(file, 0o600);
  return { dir, files };
}

test(
  'Files: a fingerprints or instance-tags file that group or others can write is refused with the chmod go-w to run; read access stays allowed',
  T,
  async () => {
    const { dir, files } = await dirWithPlantedLines();
    for (const [kind, code] of Object.entries(SHARED)) {
      const file = files[kind];
      for (const mode of [0o620, 0o602, 0o664, 0o646, 0o666, 0o660]) {
        fs.chmodSync(file, mode);
        const error = constructorError(dir);
        assert.equal(error?.code, code, `${kind} mode ${mode.toString(8)}: ${error?.message}`);
        assert.ok(error.message.includes(`chmod go-w ${file}`), error.message);
      }
      for (const mode of [0o644, 0o640, 0o604, 0o600, 0o444]) {
        fs.chmodSync(file, mode);
        const otr = openOTR(dir);
        const account = otr.findAccount('alice@example.org', PROTO);
        assert.equal(account.instanceTag, 0x1a2b3c4d, `${kind} mode ${mode.toString(8)} loads`);
        assert.equal(account.findContact('mallory@example.org').fingerprints()[0].isVerified, true);
        await otr.close();
      }
      fs.chmodSync(file, 0o600);
    }
  },
);

test('Files: a fingerprints or instance-tags file owned by another user is refused with the chown to run', T, async (t) => {
  if (process.getuid() !== 0) return cannotRun(t, "changing a file's owner needs root");
  const { dir, files } = await dirWithPlantedLines();
  for (const [kind, code] of Object.entries(SHARED)) {
    const file = files[kind];
    fs.chownSync(file, 65534, 65534);
    const error = constructorError(dir);
    assert.equal(error?.code, code, `${kind}: ${error?.message}`);
    assert.match(error.message, /belongs to uid 65534/);
    assert.ok(error.message.includes(`chown 0 ${file}`), error.message);
    fs.chownSync(file, 0, 0);
  }
  const otr = openOTR(dir); // root's own files, read by root
  assert.equal(otr.findAccount('alice@example.org', PROTO).instanceTag, 0x1a2b3c4d);
});

test('a running libotr that is not 4.1.x at 4.1.1 or later: ERR_OTR_INIT naming the version found and what to install', T, async (t) => {
  // A library preloaded in front of libotr that reports another version: the check must
  // read the running library's version, not the headers'.
  const dir = tmpdir();
  const source = path.join(dir, 'version.c');
  const cc = process.env.CC || 'cc';
  for (const version of ['4.1.0', '4.0.2', '4.2.0', '5.0.0']) {
    fs.writeFileSync(source, `const char *otrl_version(void) { return "${version}"; }\n`);
    const library = path.join(dir, `libversion-${version}.so`);
    const built = spawnSync(cc, ['-shared', '-fPIC', '-o', library, source], { encoding: 'utf8' });
    if (built.error || built.status !== 0) return cannotRun(t, `no C compiler to build the stand-in library (${built.error?.message ?? built.stderr})`);
    const probe = `
      const { OTR } = require(${JSON.stringify(path.join(REPO, 'dist', 'index.js'))});
      try { new OTR({ privkeysFile: '${dir}/k', contactsFile: '${dir}/f', instanceTagsFile: '${dir}/i' }); console.log('loaded'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    // After whatever is preloaded already (the sanitizer runtime must stay first).
    const preload = [process.env.LD_PRELOAD, library].filter(Boolean).join(' ');
    const run = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', env: { ...process.env, LD_PRELOAD: preload } });
    assert.equal(run.status, 0, run.stderr);
    const outcome = JSON.parse(run.stdout.trim());
    assert.equal(outcome.code, 'ERR_OTR_INIT', `${version}: ${run.stdout}`);
    assert.ok(outcome.message.includes(`libotr ${version}`), outcome.message);
    assert.match(outcome.message, /4\.1\.1/);
    assert.match(outcome.message, /apt-get install libotr5/);
  }
});

test('a value-returning callback that returns a Promise: ERR_OTR_CALLBACK naming it, not a silent default', T, async () => {
  const [da, db] = [tmpdir(), tmpdir()];
  await Promise.all([writeKeyFile(da, ['alice@example.org']), writeKeyFile(db, ['bob@example.org'])]);
  const A = openOTR(da);
  const B = openOTR(db);
  const net = new Net({ manual: true });
  const pair = await net.connect(A, 'alice@example.org', B, 'bob@example.org', {}, { onSmp: async () => 'secret', onAfterDecrypt: async (c, m) => m });
  await makeSecure(net, pair.a, pair.b);
  await pair.a.channel.smpVerify('secret');
  const smpRequest = pair.b.inbox.shift();
  let error;
  try {
    await pair.b.channel.read(smpRequest);
  } catch (e) {
    error = e;
  }
  assert.equal(error?.code, 'ERR_OTR_CALLBACK');
  assert.match(error.message, /onSmp returned a Promise/);
  assert.match(error.message, /smpRespond/);

  // onAfterDecrypt written as async: the read that decrypted rejects, naming it.
  await pair.a.channel.write('hello');
  let decryptError;
  try {
    await pair.b.channel.read(pair.b.inbox.shift());
  } catch (e) {
    decryptError = e;
  }
  assert.equal(decryptError?.code, 'ERR_OTR_CALLBACK');
  assert.match(decryptError.message, /onAfterDecrypt returned a Promise/);
});
