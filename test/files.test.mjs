// Files: libotr/Pidgin formats, persistence across close()/reload, key file mode, corrupt files.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { OTR, SmpEvent } from 'protocol-otr';
import {
  ALICE,
  BOB,
  PROTO,
  REPO,
  T,
  FIXTURES,
  keys,
  cloneDir,
  openOTR,
  reopen,
  filesIn,
  tmpdir,
  closeAll,
  createPair,
  securePair,
  rejectsCode,
  humanToHex,
  hexToHuman,
  awaitWithLoopAlive,
} from './helpers/harness.mjs';

after(closeAll);

const CLI = path.join(REPO, JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).bin['protocol-otr']);
const FIXTURE_FP = '3643E954 4455417C 60A84B17 0C5F0A40 698A170D';
// The three files and the lock files beside them (see README, "Operating a bridge").
const ALLOWED = new Set([
  'otr.private_key',
  'otr.fingerprints',
  'otr.instance_tags',
  'otr.private_key.lock',
  'otr.fingerprints.lock',
  'otr.instance_tags.lock',
]);

function fingerprintLines(dir) {
  const f = filesIn(dir).contactsFile;
  if (!fs.existsSync(f)) return [];
  return fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.includes('\t'))
    .map((l) => l.split('\t'));
}

function instagOf(dir, account, protocol = PROTO) {
  const lines = fs.readFileSync(filesIn(dir).instanceTagsFile, 'utf8').split('\n');
  const l = lines.map((x) => x.split('\t')).find((p) => p[0] === account && p[1] === protocol);
  return l ? parseInt(l[2], 16) : undefined;
}

test('reload after close() gives the same account and fingerprint, without a new key', T, async () => {
  const dir = tmpdir();
  const otr = openOTR(dir);
  const fp = (await otr.account('me@example.org', PROTO)).fingerprint;
  await otr.close();
  const keyBytes = fs.readFileSync(filesIn(dir).privkeysFile);
  const again = await reopen(dir);
  assert.deepEqual(
    again.accounts().map((a) => [a.name, a.protocol, a.fingerprint]),
    [['me@example.org', PROTO, fp]],
  );
  assert.equal((await again.account('me@example.org', PROTO)).fingerprint, fp);
  await again.close();
  assert.deepEqual(fs.readFileSync(filesIn(dir).privkeysFile), keyBytes, 'key file not rewritten');
});

test('the private key file is mode 0600, also after a second key is added', T, async () => {
  const dir = tmpdir();
  const otr = openOTR(dir);
  await otr.account('one@example.org', PROTO);
  assert.equal(fs.statSync(filesIn(dir).privkeysFile).mode & 0o777, 0o600);
  await otr.account('two@example.org', PROTO);
  assert.equal(fs.statSync(filesIn(dir).privkeysFile).mode & 0o777, 0o600);
  await otr.close();
  assert.equal(fs.statSync(filesIn(dir).privkeysFile).mode & 0o777, 0o600);
});

test('adding a key keeps the existing ones (the key file is rewritten whole)', T, async () => {
  const k = await keys();
  const dir = cloneDir(k.aliceDir);
  const otr = openOTR(dir);
  const second = await otr.account('second@example.org', PROTO);
  await otr.close();
  const again = await reopen(dir);
  assert.equal(again.findAccount(ALICE, PROTO)?.fingerprint, k.fingerprints.alice);
  assert.equal(again.findAccount('second@example.org', PROTO)?.fingerprint, second.fingerprint);
});

test('only the three files remain in the directory (writes go through temp files that are renamed)', T, async () => {
  const pair = await securePair();
  await pair.alice.contact.activeFingerprint.setVerified(true);
  await pair.alice.otr.account('extra@example.org', PROTO);
  await pair.alice.otr.close();
  await pair.bob.otr.close();
  for (const dir of [pair.alice.dir, pair.bob.dir]) {
    const left = fs.readdirSync(dir).filter((f) => !ALLOWED.has(f));
    assert.deepEqual(left, [], `stray files in ${dir}`);
  }
});

test('a fingerprint learnt in the AKE is written, untrusted, in libotr format on close()', T, async () => {
  const pair = await securePair();
  await pair.alice.otr.close();
  const lines = fingerprintLines(pair.alice.dir);
  assert.deepEqual(lines, [[BOB, ALICE, PROTO, humanToHex(pair.fingerprints.bob), '']]);
});

test('setVerified(true) is persisted; setVerified(false) really removes the trust from the file', T, async () => {
  const pair = await securePair();
  const dir = pair.alice.dir;
  const bobHex = humanToHex(pair.fingerprints.bob);
  await pair.alice.contact.activeFingerprint.setVerified(true);
  await pair.alice.otr.close();
  await pair.bob.otr.close();
  let [line] = fingerprintLines(dir);
  assert.equal(line[3], bobHex);
  assert.ok(line[4].length > 0, 'trust written');

  const o2 = await reopen(dir);
  const fp2 = o2.findAccount(ALICE, PROTO).findContact(BOB).fingerprints()[0];
  assert.equal(fp2.hash, pair.fingerprints.bob);
  assert.equal(fp2.isVerified, true);
  await fp2.setVerified(false);
  await o2.close();
  [line] = fingerprintLines(dir);
  assert.equal(line[3], bobHex, 'the fingerprint stays');
  assert.equal(line[4], '', 'trust removed');

  const o3 = await reopen(dir);
  assert.equal(o3.findAccount(ALICE, PROTO).findContact(BOB).fingerprints()[0].isVerified, false);
});

test('trust gained by SMP is persisted as libotr\'s "smp"', T, async () => {
  const pair = await securePair({ bob: { handlers: { onSmp: () => 'ok' } } });
  await pair.alice.channel.smpVerify('ok');
  await pair.settle();
  assert.ok(pair.alice.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
  await pair.alice.otr.close();
  const [line] = fingerprintLines(pair.alice.dir);
  assert.equal(line[4], 'smp');
  const again = await reopen(pair.alice.dir);
  assert.equal(again.findAccount(ALICE, PROTO).findContact(BOB).fingerprints()[0].isVerified, true);
});

test('the instance tag survives a reload: the peer sees the same currentSession', T, async () => {
  const p1 = await securePair();
  const tagOfBob = p1.alice.channel.currentSession;
  const tagOfAlice = p1.bob.channel.currentSession;
  await p1.alice.otr.close();
  await p1.bob.otr.close();
  assert.equal(instagOf(p1.alice.dir, ALICE), tagOfAlice, "alice's tag is in her instance tags file");
  assert.equal(instagOf(p1.bob.dir, BOB), tagOfBob);

  const p2 = await createPair({ alice: { dir: p1.alice.dir }, bob: { dir: p1.bob.dir } });
  await p2.alice.channel.init();
  await p2.settle();
  assert.equal(p2.alice.channel.status, 'Unverified');
  assert.equal(p2.alice.channel.currentSession, tagOfBob);
  assert.equal(p2.bob.channel.currentSession, tagOfAlice);
  // the reloaded contact knows the fingerprint already: not a new one
  assert.equal(p2.alice.count('onUnverifiedFingerprint'), 0);
  p2.assertNoErrors();
});

test('a Pidgin-format fixture (libotr key, hand-written fingerprints and instance tags) loads', T, async () => {
  const k = await keys();
  const dir = tmpdir('otr-pidgin-');
  fs.copyFileSync(path.join(FIXTURES, 'pidgin', 'otr.private_key'), filesIn(dir).privkeysFile);
  fs.chmodSync(filesIn(dir).privkeysFile, 0o600);
  const bobHex = humanToHex(k.fingerprints.bob);
  const carolHex = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
  fs.writeFileSync(filesIn(dir).contactsFile, `${BOB}\t${ALICE}\t${PROTO}\t${bobHex}\tverified\n` + `carol@example.org\t${ALICE}\t${PROTO}\t${carolHex}\t\n`);
  fs.writeFileSync(
    filesIn(dir).instanceTagsFile,
    "# WARNING! You shouldn't copy this file to another computer. It is unnecessary and can cause problems.\n" + `${ALICE}\t${PROTO}\t1a2b3c4d\n`,
  );

  const otr = await reopen(dir);
  const acct = otr.findAccount(ALICE, PROTO);
  assert.ok(acct, 'account from the fixture key');
  assert.equal(acct.fingerprint, FIXTURE_FP, 'same fingerprint libotr computed');
  const bob = acct.findContact(BOB);
  assert.ok(bob, 'contact from the fingerprints file');
  assert.deepEqual(
    bob.fingerprints().map((f) => [f.hash, f.isVerified]),
    [[k.fingerprints.bob, true]],
  );
  assert.deepEqual(
    acct
      .findContact('carol@example.org')
      .fingerprints()
      .map((f) => [f.hash, f.isVerified]),
    [[hexToHuman(carolHex), false]],
  );
  await otr.close();

  // Talk to the real bob: the pre-verified key makes the channel Private at once; bob sees the tag.
  const pair = await createPair({ alice: { dir } });
  await pair.alice.channel.init();
  await pair.settle();
  assert.equal(pair.alice.channel.status, 'Private');
  assert.equal(pair.bob.channel.status, 'Unverified');
  assert.equal(pair.bob.channel.currentSession, 0x1a2b3c4d, 'instance tag from the hand-written file');
  assert.deepEqual(pair.bob.args('onUnverifiedFingerprint'), [[FIXTURE_FP, false]]);
  assert.equal(pair.alice.count('onUnverifiedFingerprint'), 0, 'known key: not new');
  pair.assertNoErrors();
});

test('missing files are fine: a fresh directory opens and the files are created when needed', T, async () => {
  const dir = path.join(tmpdir(), 'not-yet');
  fs.mkdirSync(dir);
  const otr = openOTR(dir);
  assert.deepEqual(otr.accounts(), []);
  await otr.account(ALICE, PROTO);
  assert.ok(fs.existsSync(filesIn(dir).privkeysFile));
  await otr.close();
});

// Open a context over `files` and use it until something fails; the failure must be `code`.
async function useUntilFailure(otrBox, files) {
  otrBox.otr = new OTR(files);
  const acct = await otrBox.otr.account(ALICE, PROTO);
  const c = await acct.contact(BOB);
  const ch = c.channel({ onWrite() {}, onRead() {} });
  await ch.write('x');
}

// With a bad key file, account() itself must fail: it may not generate a replacement key.
async function accountOnly(otrBox, files) {
  otrBox.otr = new OTR(files);
  await otrBox.otr.account(ALICE, PROTO);
}

async function corruptCase(fileKey, content, code, what, use = useUntilFailure) {
  const k = await keys();
  const dir = cloneDir(k.aliceDir);
  const files = filesIn(dir);
  fs.writeFileSync(files[fileKey], content);
  const before = fs.readFileSync(files[fileKey]);
  const box = {};
  await rejectsCode(() => use(box, files), code, what);
  if (box.otr) await box.otr.close().catch(() => {});
  assert.deepEqual(fs.readFileSync(files[fileKey]), before, `${what}: the file is left as it was`);
  return dir;
}

test('a corrupt private key file is ERR_OTR_PRIVKEY_FILE and stays unchanged (no new identity)', T, async () => {
  await corruptCase('privkeysFile', 'this is not a libotr key file\n', 'ERR_OTR_PRIVKEY_FILE', 'garbage key file', accountOnly);
  await corruptCase('privkeysFile', '(foo (bar baz))\n', 'ERR_OTR_PRIVKEY_FILE', 'wrong s-expression', accountOnly);
});

test('a truncated private key file is ERR_OTR_PRIVKEY_FILE and stays unchanged', T, async () => {
  const k = await keys();
  const full = fs.readFileSync(filesIn(k.aliceDir).privkeysFile);
  await corruptCase('privkeysFile', full.subarray(0, Math.floor(full.length / 2)), 'ERR_OTR_PRIVKEY_FILE', 'truncated key', accountOnly);
});

test('an empty private key file is ERR_OTR_PRIVKEY_FILE and stays unchanged', T, async () => {
  const dir = await corruptCase('privkeysFile', '', 'ERR_OTR_PRIVKEY_FILE', 'empty key file', accountOnly);
  assert.equal(fs.statSync(filesIn(dir).privkeysFile).size, 0, 'not regenerated');
});

test('a corrupt fingerprints file loads without its bad lines, reported in loadReport; the original is kept as a dated copy', T, async () => {
  for (const [content, what] of [
    [`${BOB}\t${ALICE}\t${PROTO}\tnot-a-fingerprint\t\n`, 'bad hex line'],
    [Buffer.from([0x00, 0xff, 0xfe, 0x00, 0x13, 0x37, 0x0a, 0x00, 0x01]), 'binary garbage'],
  ]) {
    const k = await keys();
    const dir = cloneDir(k.aliceDir);
    const files = filesIn(dir);
    fs.writeFileSync(files.contactsFile, content);
    const otr = openOTR(files);
    const errors = [];
    otr.on('error', (e) => errors.push(e));
    assert.ok(otr.loadReport.skipped.length >= 1, `${what}: reported`);
    assert.equal(otr.loadReport.copies.length, 1);
    assert.deepEqual(fs.readFileSync(otr.loadReport.copies[0]), Buffer.from(content), `${what}: the copy is the original`);
    assert.match(path.basename(otr.loadReport.copies[0]), /^otr\.fingerprints\.orig-\d{8}T\d{6}Z$/);
    await (await otr.account(ALICE, PROTO)).contact(BOB);
    await otr.close();
    assert.equal(errors.length, otr.loadReport.skipped.length, `${what}: each skipped line was an 'error'`);
    assert.ok(errors.every((e) => e.code === 'ERR_OTR_FINGERPRINTS_FILE'));
  }
});

test('a corrupt instance tags file is ERR_OTR_INSTAG_FILE and stays unchanged', T, async () => {
  await corruptCase('instanceTagsFile', `${ALICE}\t${PROTO}\tnot-hex!\n`, 'ERR_OTR_INSTAG_FILE', 'non-hex tag');
  await corruptCase('instanceTagsFile', `${ALICE}\t${PROTO}\t1a2b`, 'ERR_OTR_INSTAG_FILE', 'truncated line');
});

test('a key file that cannot be written is an OtrError from account(), not a crash', T, async () => {
  const dir = tmpdir();
  const blocker = path.join(dir, 'a-file');
  fs.writeFileSync(blocker, 'x');
  const files = {
    privkeysFile: path.join(blocker, 'otr.private_key'), // parent is a regular file
    contactsFile: path.join(dir, 'otr.fingerprints'),
    instanceTagsFile: path.join(dir, 'otr.instance_tags'),
  };
  let otr;
  await rejectsCode(
    async () => {
      otr = new OTR(files);
      await otr.account(ALICE, PROTO);
    },
    ['ERR_OTR_FILE_WRITE', 'ERR_OTR_KEYGEN', 'ERR_OTR_PRIVKEY_FILE'],
    'unwritable key file',
  );
  if (otr) await otr.close().catch(() => {});
});

test('close() waits for a key generation in progress and persists the key', T, async () => {
  const dir = tmpdir();
  const otr = new OTR(filesIn(dir));
  const pending = otr.account('late@example.org', PROTO);
  await otr.close();
  const acct = await pending;
  assert.match(acct.fingerprint, /^[0-9A-F]{8}( [0-9A-F]{8}){4}$/);
  const again = await reopen(dir);
  assert.equal(again.findAccount('late@example.org', PROTO)?.fingerprint, acct.fingerprint);
});

// A contacts file whose directory turns into a regular file after loading: the batched
// fingerprint write that follows the AKE fails with no call waiting for it.
async function pairWithBrokenContactsDir() {
  const k = await keys();
  const dir = cloneDir(k.aliceDir);
  const sub = path.join(dir, 'sub');
  fs.mkdirSync(sub);
  const files = { ...filesIn(dir), contactsFile: path.join(sub, 'otr.fingerprints') };
  const pair = await createPair({ alice: { dir: files } });
  fs.rmSync(sub, { recursive: true });
  fs.writeFileSync(sub, 'now a file');
  return pair;
}

test('an error no call waits for (background fingerprints write failing) is an "error" event', T, async () => {
  const pair = await pairWithBrokenContactsDir();
  const errors = [];
  const firstError = new Promise((resolve) => pair.alice.otr.on('error', (e) => resolve(errors.push(e))));
  await pair.alice.channel.init();
  await pair.settle();
  await awaitWithLoopAlive(firstError);
  assert.ok(errors.length >= 1, 'error event emitted');
  assert.equal(errors[0].name, 'OtrError');
  assert.equal(errors[0].code, 'ERR_OTR_FILE_WRITE');
  assert.equal(pair.alice.channel.status, 'Unverified', 'the session is unaffected');
  await rejectsCode(() => pair.alice.otr.close(), 'ERR_OTR_FILE_WRITE', 'close() cannot persist either');
});

test('without an "error" listener such an error is a process warning, not a crash', T, async () => {
  const pair = await pairWithBrokenContactsDir();
  const warnings = [];
  let warned;
  const ours = new Promise((resolve) => (warned = resolve));
  const onWarning = (w) => {
    warnings.push(w);
    if (w.code === 'ERR_OTR_FILE_WRITE') warned();
  };
  process.on('warning', onWarning);
  try {
    await pair.alice.channel.init();
    await pair.settle();
    await awaitWithLoopAlive(ours);
  } finally {
    process.off('warning', onWarning);
  }
  assert.ok(
    warnings.some((w) => w.code === 'ERR_OTR_FILE_WRITE'),
    `warnings: ${warnings.map((w) => w.code)}`,
  );
  await pair.alice.otr.close().catch(() => {});
});

test('README extras: new OTR() throws the load error; account.instanceTag is the tag the peer sees', T, async () => {
  const k = await keys();
  const bad = cloneDir(k.aliceDir);
  fs.writeFileSync(filesIn(bad).privkeysFile, 'garbage');
  await rejectsCode(async () => new OTR(filesIn(bad)), 'ERR_OTR_PRIVKEY_FILE', 'constructor');

  const pair = await securePair();
  assert.equal(pair.alice.account.instanceTag, pair.bob.channel.currentSession);
  assert.equal(pair.bob.account.instanceTag, pair.alice.channel.currentSession);
});

test('temp files left by a killed write (they may hold key material) are removed on load; other files stay', T, async () => {
  const k = await keys();
  const dir = cloneDir(k.aliceDir);
  const files = filesIn(dir);
  const stale = [`${files.privkeysFile}.tmp-a1B2c3`, `${files.contactsFile}.tmp-zzzzzz`, `${files.instanceTagsFile}.tmp-000000`];
  const unrelated = [`${files.privkeysFile}.tmp-toolong1`, path.join(dir, 'notes.tmp-abcdef')];
  for (const f of [...stale, ...unrelated]) fs.writeFileSync(f, '(privkeys half-written', { mode: 0o600 });
  const otr = openOTR(dir);
  for (const f of stale) assert.equal(fs.existsSync(f), false, `${path.basename(f)} removed`);
  for (const f of unrelated) assert.equal(fs.existsSync(f), true, `${path.basename(f)} kept`);
  assert.ok(otr.findAccount(ALICE, PROTO), 'the real files loaded');
});

// Leaves `file` as a killed writer would, and keeps it open: through that descriptor the test
// sees whether the bytes were wiped before the name was removed.
function leftBehind(file, bytes) {
  fs.writeFileSync(file, bytes, { mode: 0o600 });
  return fs.openSync(file, 'r');
}

function assertWipedAndRemoved(file, fd, size) {
  assert.equal(fs.existsSync(file), false, `${path.basename(file)} removed`);
  const left = Buffer.alloc(size + 1);
  const read = fs.readSync(fd, left, 0, left.length, 0);
  fs.closeSync(fd);
  assert.equal(read, size, `${path.basename(file)} kept its size`);
  assert.ok(
    left.subarray(0, read).every((b) => b === 0),
    `${path.basename(file)} was wiped before its removal`,
  );
}

test(
  'Files: temp files of the JS writer (.tmp- and 12 hex digits: a killed import or db export) are wiped and removed at load and by the writer itself before it writes',
  T,
  async () => {
    const k = await keys();
    const key = fs.readFileSync(filesIn(k.aliceDir).privkeysFile);
    // At load: the names the JS writer and the native writer use, and the native writer's
    // older six-character ones.
    const dir = cloneDir(k.aliceDir);
    const files = filesIn(dir);
    const stale = [
      `${files.privkeysFile}.tmp-0123456789ab`,
      `${files.contactsFile}.tmp-fedcba987654`,
      `${files.instanceTagsFile}.tmp-a1b2c3d4e5f6`,
      `${files.privkeysFile}.tmp-Zx9Qw1`,
      `${files.contactsFile}.orig-20250102T030405Z.tmp-00aa11bb22cc`,
    ];
    const witnesses = stale.map((f) => leftBehind(f, key));
    const unrelated = [
      `${files.privkeysFile}.tmp-0123456789abc`,
      `${files.privkeysFile}.tmp-0123456789aB`,
      path.join(dir, 'notes.tmp-0123456789ab'),
      `${files.contactsFile}.orig-x.tmp-00aa11bb22cc`,
    ];
    for (const f of unrelated) fs.writeFileSync(f, 'not ours', { mode: 0o600 });
    const otr = openOTR(dir);
    stale.forEach((f, i) => assertWipedAndRemoved(f, witnesses[i], key.length));
    for (const f of unrelated) assert.equal(fs.readFileSync(f, 'utf8'), 'not ours', `${path.basename(f)} kept`);
    assert.ok(otr.findAccount(ALICE, PROTO), 'the real files loaded');
    await otr.close();

    // The writer itself (here the CLI's import): a target nothing ever loads is swept too.
    const target = tmpdir('otr-import-target-');
    const left = `${filesIn(target).privkeysFile}.tmp-00112233aabb`;
    const witness = leftBehind(left, key);
    const imported = spawnSync(process.execPath, [CLI, 'import', '--from', 'pidgin', k.aliceDir, '--dir', target], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(imported.status, 0, imported.stderr);
    assertWipedAndRemoved(left, witness, key.length);
    assert.deepEqual(fs.readFileSync(filesIn(target).privkeysFile), key, 'the import itself happened');
  },
);

test('the fingerprints file follows every trust change: seen, verified, unverified, forgotten, renamed, contact forgotten', T, async () => {
  const k = await keys();
  const dir = cloneDir(k.aliceDir);
  const otr = openOTR(dir);
  const acct = await otr.account(ALICE, PROTO);
  const hex = (n) => String(n).repeat(40).slice(0, 40);
  // What the file must hold: `${contact}\t${hex}` → trust.
  const model = new Map();
  const onDisk = () =>
    new Map(
      fingerprintLines(dir).map(([u, a, p, h, t]) => {
        assert.deepEqual([a, p], [ALICE, PROTO]);
        return [`${u}\t${h}`, t ?? ''];
      }),
    );
  const check = (step) => {
    const lines = fingerprintLines(dir);
    assert.equal(new Set(lines.map((l) => `${l[0]}\t${l[3]}`)).size, lines.length, `${step}: no duplicate lines`);
    assert.deepEqual(onDisk(), model, step);
  };
  for (let i = 1; i <= 6; i++) {
    await acct.contact(`c${i}@example.org`, hex(i), i % 2 === 0);
    model.set(`c${i}@example.org\t${hex(i)}`, i % 2 === 0 ? 'verified' : '');
  }
  check('six contacts added');
  await acct.contact('c1@example.org', hex(7));
  model.set(`c1@example.org\t${hex(7)}`, '');
  check('a second fingerprint for c1');
  const c1 = acct.findContact('c1@example.org');
  await c1
    .fingerprints()
    .find((f) => humanToHex(f.hash) === hex(7))
    .setVerified(true);
  model.set(`c1@example.org\t${hex(7)}`, 'verified');
  check('c1 second fingerprint verified');
  await acct.findContact('c2@example.org').fingerprints()[0].setVerified(false);
  model.set(`c2@example.org\t${hex(2)}`, '');
  check('c2 unverified');
  await c1
    .fingerprints()
    .find((f) => humanToHex(f.hash) === hex(1))
    .forget();
  model.delete(`c1@example.org\t${hex(1)}`);
  check('c1 first fingerprint forgotten');
  await acct.findContact('c3@example.org').rename('c3-renamed@example.org');
  model.delete(`c3@example.org\t${hex(3)}`);
  model.set(`c3-renamed@example.org\t${hex(3)}`, '');
  check('c3 renamed');
  await acct.findContact('c5@example.org').forget({ unverifiedFingerprints: true });
  model.delete(`c5@example.org\t${hex(5)}`);
  check('c5 forgotten with its unverified fingerprint');
  await acct.findContact('c4@example.org').forget({ unverifiedFingerprints: true });
  check('c4 forgotten: its verified fingerprint stays');
  await otr.close();
  check('after close()');
  const again = await reopen(dir);
  const loaded = new Map();
  for (const contact of again.findAccount(ALICE, PROTO).contacts()) {
    for (const fp of contact.fingerprints()) loaded.set(`${contact.name}\t${humanToHex(fp.hash)}`, fp.isVerified ? 'verified' : '');
  }
  assert.deepEqual(loaded, model, 'reloaded');
});
