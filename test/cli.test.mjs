// The operator CLI (`protocol-otr`, the package's bin) over real key files: the Pidgin-format
// fixture written by libotr, files written by hand in Pidgin's formats, and the layouts of
// irssi-otr and BitlBee. Each run is a separate process, as an operator's would be.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { REPO, FIXTURES, T, closeAll, filesIn, openOTR, tmpdir } from './helpers/harness.mjs';

after(closeAll);

const PKG = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
const CLI = path.join(REPO, PKG.bin['protocol-otr']);
const ALICE = 'alice@example.org';
const PROTO = 'prpl-jabber';
const FIXTURE_FP = '3643E954 4455417C 60A84B17 0C5F0A40 698A170D';
const BOB_HEX = '0123456789abcdef0123456789abcdef01234567';
const BOB_FP = '01234567 89ABCDEF 01234567 89ABCDEF 01234567';
const CAROL_HEX = 'fedcba9876543210fedcba9876543210fedcba98';

function cli(...args) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

// A Pidgin directory: the libotr-written key, and contacts and instance tags by hand.
function pidginDir() {
  const dir = tmpdir('otr-cli-');
  fs.copyFileSync(path.join(FIXTURES, 'pidgin', 'otr.private_key'), path.join(dir, 'otr.private_key'));
  fs.chmodSync(path.join(dir, 'otr.private_key'), 0o600); // as Pidgin keeps it (protocol-otr refuses a key others can read)
  fs.writeFileSync(
    path.join(dir, 'otr.fingerprints'),
    `bob@example.org\t${ALICE}\t${PROTO}\t${BOB_HEX}\tverified\ncarol@example.org\t${ALICE}\t${PROTO}\t${CAROL_HEX}\t\n`,
  );
  fs.writeFileSync(path.join(dir, 'otr.instance_tags'), `${ALICE}\t${PROTO}\t1a2b3c4d\n`);
  return dir;
}

const fingerprintLines = (file) =>
  fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('\t')).map((l) => l.split('\t')).sort();

function contents(dir) {
  const out = {};
  for (const name of fs.readdirSync(dir).sort()) out[name] = fs.readFileSync(path.join(dir, name)).toString('base64');
  return out;
}

test('the package declares the bin and it prints its usage', () => {
  assert.equal(PKG.bin['protocol-otr'], 'dist/cli/main.js');
  const help = cli('--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /keys list/);
  assert.match(help.stdout, /exit codes/);
});

test('keys list and keys fingerprint read the Pidgin fixture (text and --json), writing nothing', T, () => {
  const dir = pidginDir();
  const before = contents(dir);
  const text = cli('keys', 'list', '--dir', dir);
  assert.equal(text.status, 0, text.stderr);
  assert.equal(text.stdout, `${ALICE}\t${PROTO}\t${FIXTURE_FP}\n`);
  const json = cli('keys', 'list', '--dir', dir, '--json');
  assert.deepEqual(json.json(), [{ account: ALICE, protocol: PROTO, fingerprint: FIXTURE_FP, instanceTag: 0x1a2b3c4d }]);
  const fp = cli('keys', 'fingerprint', ALICE, PROTO, '--dir', dir);
  assert.equal(fp.status, 0, fp.stderr);
  assert.equal(fp.stdout, `${FIXTURE_FP}\n`);
  assert.deepEqual(contents(dir), before, 'reading commands leave the directory as it was');
});

test('trust list shows the contacts\' fingerprints and trust; --account/--protocol filter', T, () => {
  const dir = pidginDir();
  const rows = cli('trust', 'list', '--dir', dir, '--json').json();
  assert.deepEqual(
    rows.map((r) => [r.contact, r.fingerprint, r.trust, r.verified]).sort(),
    [
      ['bob@example.org', BOB_FP, 'verified', true],
      ['carol@example.org', 'FEDCBA98 76543210 FEDCBA98 76543210 FEDCBA98', '', false],
    ],
  );
  const text = cli('trust', 'list', '--dir', dir);
  assert.match(text.stdout, new RegExp(`bob@example.org\\t${BOB_FP}\\tverified`));
  assert.match(text.stdout, /carol@example.org\t.*\tuntrusted/);
  assert.deepEqual(cli('trust', 'list', '--dir', dir, '--account', 'nobody@example.org', '--json').json(), []);
});

test('trust verify, distrust and forget change the fingerprints file (libotr format), each persisted', T, () => {
  const dir = pidginDir();
  const file = path.join(dir, 'otr.fingerprints');
  const carolHuman = 'FEDCBA98 76543210 FEDCBA98 76543210 FEDCBA98';
  const verify = cli('trust', 'verify', ALICE, PROTO, 'carol@example.org', carolHuman, '--dir', dir, '--json');
  assert.equal(verify.status, 0, verify.stderr);
  assert.equal(verify.json().verified, true);
  assert.deepEqual(fingerprintLines(file), [
    ['bob@example.org', ALICE, PROTO, BOB_HEX, 'verified'],
    ['carol@example.org', ALICE, PROTO, CAROL_HEX, 'verified'],
  ]);
  // A fingerprint learnt out of band: verify adds it, trusted.
  const dave = cli('trust', 'verify', ALICE, PROTO, 'dave@example.org', 'AAAAAAAA BBBBBBBB CCCCCCCC DDDDDDDD EEEEEEEE', '--dir', dir);
  assert.equal(dave.status, 0, dave.stderr);
  assert.ok(fingerprintLines(file).some((l) => l[0] === 'dave@example.org' && l[3] === 'aaaaaaaabbbbbbbbccccccccddddddddeeeeeeee' && l[4] === 'verified'));
  const distrust = cli('trust', 'distrust', ALICE, PROTO, 'bob@example.org', BOB_HEX, '--dir', dir);
  assert.equal(distrust.status, 0, distrust.stderr);
  assert.deepEqual(fingerprintLines(file).find((l) => l[0] === 'bob@example.org'), ['bob@example.org', ALICE, PROTO, BOB_HEX, '']);
  const forget = cli('trust', 'forget', ALICE, PROTO, 'bob@example.org', BOB_FP, '--dir', dir);
  assert.equal(forget.status, 0, forget.stderr);
  assert.ok(!fingerprintLines(file).some((l) => l[0] === 'bob@example.org'), 'bob is gone from the file');
  assert.equal((fs.statSync(file).mode & 0o777).toString(8), '600');
  // The key is untouched by all this.
  assert.equal(fs.readFileSync(path.join(dir, 'otr.private_key'), 'utf8'), fs.readFileSync(path.join(FIXTURES, 'pidgin', 'otr.private_key'), 'utf8'));
});

test('keys generate makes a key (0600, loadable by the library) once; a second run says it exists', T, async () => {
  const dir = tmpdir('otr-cli-');
  const first = cli('keys', 'generate', 'bridge@example.org', 'prpl-irc', '--dir', dir, '--json');
  assert.equal(first.status, 0, first.stderr);
  const made = first.json();
  assert.equal(made.created, true);
  assert.match(made.fingerprint, /^[0-9A-F]{8}( [0-9A-F]{8}){4}$/);
  assert.equal((fs.statSync(path.join(dir, 'otr.private_key')).mode & 0o777).toString(8), '600');
  const second = cli('keys', 'generate', 'bridge@example.org', 'prpl-irc', '--dir', dir, '--json');
  assert.equal(second.status, 0, second.stderr);
  assert.deepEqual(second.json(), { ...made, created: false });
  const otr = openOTR(dir);
  assert.equal(otr.findAccount('bridge@example.org', 'prpl-irc')?.fingerprint, made.fingerprint);
  await otr.close();
});

test('exit codes: 4 for an unknown account or fingerprint, 2 for a wrong command line, 1 for an unusable file', T, () => {
  const dir = pidginDir();
  const noAccount = cli('keys', 'fingerprint', 'nobody@example.org', PROTO, '--dir', dir);
  assert.equal(noAccount.status, 4);
  assert.match(noAccount.stderr, /no key for nobody@example.org \(prpl-jabber\).*keys generate/);
  const noFp = cli('trust', 'forget', ALICE, PROTO, 'bob@example.org', CAROL_HEX, '--dir', dir);
  assert.equal(noFp.status, 4);
  assert.equal(cli('keys').status, 2);
  assert.equal(cli('keys', 'fingerprint', ALICE, '--dir', dir).status, 2);
  assert.equal(cli('trust', 'verify', ALICE, PROTO, 'bob@example.org', 'not-hex', '--dir', dir).status, 2);
  assert.equal(cli('keys', 'list', '--no-such-option').status, 2);
  assert.equal(cli('frobnicate').status, 2);
  fs.writeFileSync(path.join(dir, 'otr.private_key'), '(privkeys (account (name "x"');
  const corrupt = cli('keys', 'list', '--dir', dir, '--json');
  assert.equal(corrupt.status, 1);
  assert.equal(corrupt.json().error.code, 'ERR_OTR_PRIVKEY_FILE');
  assert.match(corrupt.json().error.message, new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the message names the real file, not a copy');
});

test('import --from pidgin takes over the directory\'s files; the key and trust load unchanged', T, () => {
  const source = pidginDir();
  const target = tmpdir('otr-cli-target-');
  const imported = cli('import', '--from', 'pidgin', source, '--dir', target, '--json');
  assert.equal(imported.status, 0, imported.stderr);
  assert.deepEqual(imported.json().accounts, [{ account: ALICE, protocol: PROTO, fingerprint: FIXTURE_FP }]);
  assert.equal(imported.json().fingerprints, 2);
  for (const f of Object.values(filesIn(target))) assert.equal((fs.statSync(f).mode & 0o777).toString(8), '600', f);
  assert.equal(cli('keys', 'fingerprint', ALICE, PROTO, '--dir', target).stdout.trim(), FIXTURE_FP);
  assert.equal(cli('keys', 'list', '--dir', target, '--json').json()[0].instanceTag, 0x1a2b3c4d);
  assert.equal(cli('trust', 'list', '--dir', target, '--json').json().find((r) => r.contact === 'bob@example.org').trust, 'verified');
  // Never over an existing set: refused, and the target is left as it was.
  const before = contents(target);
  const again = cli('import', '--from', 'pidgin', source, '--dir', target);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already exists/);
  assert.deepEqual(contents(target), before);
});

test('import --from irssi reads ~/.irssi/otr/{otr.key,otr.fp,otr.instag}', T, () => {
  const pidgin = pidginDir();
  const irssi = tmpdir('otr-cli-irssi-');
  fs.mkdirSync(path.join(irssi, 'otr'));
  fs.copyFileSync(path.join(pidgin, 'otr.private_key'), path.join(irssi, 'otr', 'otr.key'));
  fs.copyFileSync(path.join(pidgin, 'otr.fingerprints'), path.join(irssi, 'otr', 'otr.fp'));
  fs.copyFileSync(path.join(pidgin, 'otr.instance_tags'), path.join(irssi, 'otr', 'otr.instag'));
  for (const from of [irssi, path.join(irssi, 'otr')]) {
    const target = tmpdir('otr-cli-target-');
    const r = cli('import', '--from', 'irssi', from, '--dir', target, '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json().fingerprints, 2);
    assert.equal(cli('keys', 'fingerprint', ALICE, PROTO, '--dir', target).stdout.trim(), FIXTURE_FP);
  }
});

test('import --from bitlbee reads <nick>.otr_keys/.otr_fprints/.otr_instags and needs --user', T, () => {
  const pidgin = pidginDir();
  const bitlbee = tmpdir('otr-cli-bitlbee-');
  fs.copyFileSync(path.join(pidgin, 'otr.private_key'), path.join(bitlbee, 'alice.otr_keys'));
  fs.copyFileSync(path.join(pidgin, 'otr.fingerprints'), path.join(bitlbee, 'alice.otr_fprints'));
  const target = tmpdir('otr-cli-target-');
  const noUser = cli('import', '--from', 'bitlbee', bitlbee, '--dir', target);
  assert.equal(noUser.status, 2);
  assert.match(noUser.stderr, /--user/);
  const wrongUser = cli('import', '--from', 'bitlbee', bitlbee, '--user', 'mallory', '--dir', target);
  assert.equal(wrongUser.status, 4);
  assert.match(wrongUser.stderr, /mallory\.otr_keys/);
  const r = cli('import', '--from', 'bitlbee', bitlbee, '--user', 'alice', '--dir', target, '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(cli('keys', 'fingerprint', ALICE, PROTO, '--dir', target).stdout.trim(), FIXTURE_FP);
  assert.ok(!fs.existsSync(path.join(target, 'otr.instance_tags')), 'no instance tags file was imported where BitlBee had none');
  assert.equal(cli('trust', 'list', '--dir', target, '--json').json().length, 2);
});

test('import checks the source with libotr first: a corrupt key file is refused and nothing is written', T, () => {
  const source = pidginDir();
  fs.writeFileSync(path.join(source, 'otr.private_key'), 'not a key file');
  const target = tmpdir('otr-cli-target-');
  const r = cli('import', '--from', 'pidgin', source, '--dir', target, '--json');
  assert.equal(r.status, 1);
  assert.equal(r.json().error.code, 'ERR_OTR_PRIVKEY_FILE');
  assert.deepEqual(fs.readdirSync(target), []);
});
