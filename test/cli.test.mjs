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
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    // --json prints { result, skipped } or { error, skipped } (and all three for exit code 6).
    json: () => JSON.parse(r.stdout),
    result: () => JSON.parse(r.stdout).result,
  };
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
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.includes('\t'))
    .map((l) => l.split('\t'))
    .sort();

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
  assert.deepEqual(json.result(), [{ account: ALICE, protocol: PROTO, fingerprint: FIXTURE_FP, instanceTag: 0x1a2b3c4d }]);
  const fp = cli('keys', 'fingerprint', ALICE, PROTO, '--dir', dir);
  assert.equal(fp.status, 0, fp.stderr);
  assert.equal(fp.stdout, `${FIXTURE_FP}\n`);
  assert.deepEqual(contents(dir), before, 'reading commands leave the directory as it was');
});

test("trust list shows the contacts' fingerprints and trust; --account/--protocol filter", T, () => {
  const dir = pidginDir();
  const rows = cli('trust', 'list', '--dir', dir, '--json').result();
  assert.deepEqual(rows.map((r) => [r.contact, r.fingerprint, r.trust, r.verified]).sort(), [
    ['bob@example.org', BOB_FP, 'verified', true],
    ['carol@example.org', 'FEDCBA98 76543210 FEDCBA98 76543210 FEDCBA98', '', false],
  ]);
  const text = cli('trust', 'list', '--dir', dir);
  assert.match(text.stdout, new RegExp(`bob@example.org\\t${BOB_FP}\\tverified`));
  assert.match(text.stdout, /carol@example.org\t.*\tuntrusted/);
  assert.deepEqual(cli('trust', 'list', '--dir', dir, '--account', 'nobody@example.org', '--json').result(), []);
});

test('trust verify, distrust and forget change the fingerprints file (libotr format), each persisted', T, () => {
  const dir = pidginDir();
  const file = path.join(dir, 'otr.fingerprints');
  const carolHuman = 'FEDCBA98 76543210 FEDCBA98 76543210 FEDCBA98';
  const verify = cli('trust', 'verify', ALICE, PROTO, 'carol@example.org', carolHuman, '--dir', dir, '--json');
  assert.equal(verify.status, 0, verify.stderr);
  assert.equal(verify.result().verified, true);
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
  assert.deepEqual(
    fingerprintLines(file).find((l) => l[0] === 'bob@example.org'),
    ['bob@example.org', ALICE, PROTO, BOB_HEX, ''],
  );
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
  const made = first.result();
  assert.equal(made.created, true);
  assert.match(made.fingerprint, /^[0-9A-F]{8}( [0-9A-F]{8}){4}$/);
  assert.equal((fs.statSync(path.join(dir, 'otr.private_key')).mode & 0o777).toString(8), '600');
  const second = cli('keys', 'generate', 'bridge@example.org', 'prpl-irc', '--dir', dir, '--json');
  assert.equal(second.status, 0, second.stderr);
  assert.deepEqual(second.result(), { ...made, created: false });
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

test("import --from pidgin takes over the directory's files; the key and trust load unchanged", T, () => {
  const source = pidginDir();
  const target = tmpdir('otr-cli-target-');
  const imported = cli('import', '--from', 'pidgin', source, '--dir', target, '--json');
  assert.equal(imported.status, 0, imported.stderr);
  assert.deepEqual(imported.result().accounts, [{ account: ALICE, protocol: PROTO, fingerprint: FIXTURE_FP }]);
  assert.equal(imported.result().fingerprints, 2);
  for (const f of Object.values(filesIn(target))) assert.equal((fs.statSync(f).mode & 0o777).toString(8), '600', f);
  assert.equal(cli('keys', 'fingerprint', ALICE, PROTO, '--dir', target).stdout.trim(), FIXTURE_FP);
  assert.equal(cli('keys', 'list', '--dir', target, '--json').result()[0].instanceTag, 0x1a2b3c4d);
  assert.equal(
    cli('trust', 'list', '--dir', target, '--json')
      .result()
      .find((r) => r.contact === 'bob@example.org').trust,
    'verified',
  );
  // Never over an existing set: refused, and the target is left as it was.
  const before = contents(target);
  const again = cli('import', '--from', 'pidgin', source, '--dir', target);
  assert.equal(again.status, 5);
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
    assert.equal(r.result().fingerprints, 2);
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
  assert.equal(cli('trust', 'list', '--dir', target, '--json').result().length, 2);
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

// ---- as operators expect (a new user's first hour) ----

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// A Pidgin directory whose fingerprints file has one line libotr cannot read (line 2).
function dirWithBadLine() {
  const dir = pidginDir();
  const file = path.join(dir, 'otr.fingerprints');
  const [bob, carol] = fs.readFileSync(file, 'utf8').trim().split('\n');
  fs.writeFileSync(file, `${bob}\nnot a fingerprint line\n${carol}\n`);
  return { dir, file };
}

test('a missing --dir, or one that is a file, is exit code 2 naming the path, for every command (it read as an empty store)', T, () => {
  const parent = tmpdir('otr-cli-');
  const missing = path.join(parent, 'no-such-dir');
  const aFile = path.join(parent, 'a-file');
  fs.writeFileSync(aFile, 'not a directory');
  const source = pidginDir();
  const commands = [
    ['keys', 'list'],
    ['keys', 'fingerprint', ALICE, PROTO],
    ['keys', 'generate', ALICE, PROTO],
    ['trust', 'list'],
    ['trust', 'verify', ALICE, PROTO, 'bob@example.org', BOB_HEX],
    ['trust', 'distrust', ALICE, PROTO, 'bob@example.org', BOB_HEX],
    ['trust', 'forget', ALICE, PROTO, 'bob@example.org', BOB_HEX],
    ['import', '--from', 'pidgin', source],
    ['db', 'import', '--db', 'postgres://127.0.0.1:1/none'],
    ['db', 'export', '--db', 'postgres://127.0.0.1:1/none'],
  ];
  for (const dir of [missing, aFile]) {
    for (const command of commands) {
      const r = cli(...command, '--dir', dir, '--json');
      const what = `${command.join(' ')} --dir ${dir}`;
      assert.equal(r.status, 2, `${what}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`--dir ${escape(dir)} (does not exist|is not a directory)`), what);
      assert.deepEqual(r.json().error, { message: r.json().error.message, exitCode: 2, code: 'ERR_OTR_CLI_USAGE' }, what);
      assert.equal(r.json().result, undefined, what);
    }
  }
  assert.deepEqual(fs.readdirSync(parent).sort(), ['a-file'], 'nothing was made: no directory, no key, no lock files');
  const file = cli('keys', 'list', '--fingerprints', path.join(missing, 'otr.fingerprints'), '--dir', source);
  assert.equal(file.status, 2);
  assert.match(file.stderr, new RegExp(`--fingerprints ${escape(missing)}.* does not exist`));
});

test('exit codes mean one thing each, as docs/CLI.md lists them, and every JSON error carries its code (3 and 4 had none)', T, async () => {
  const dir = pidginDir();
  const seen = {};
  const expect = (code, errorCode, ...args) => {
    const r = cli(...args, '--json');
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.json().error.exitCode, code);
    assert.equal(r.json().error.code, errorCode, args.join(' '));
    seen[code] = errorCode;
  };
  const corrupt = tmpdir('otr-cli-');
  fs.writeFileSync(path.join(corrupt, 'otr.private_key'), '(privkeys (account (name "x"');
  expect(1, 'ERR_OTR_PRIVKEY_FILE', 'keys', 'list', '--dir', corrupt);
  expect(2, 'ERR_OTR_CLI_USAGE', 'keys', 'fingerprint', ALICE, '--dir', dir);
  const bridge = openOTR(dir); // holds the files' lock, as a running bridge does
  expect(3, 'ERR_OTR_LOCKED', 'keys', 'generate', 'other@example.org', PROTO, '--dir', dir);
  await bridge.close();
  expect(4, 'ERR_OTR_CLI_NOT_FOUND', 'trust', 'forget', ALICE, PROTO, 'bob@example.org', CAROL_HEX, '--dir', dir);
  expect(5, 'ERR_OTR_CLI_TARGET_EXISTS', 'import', '--from', 'pidgin', pidginDir(), '--dir', dir);
  expect(6, 'ERR_OTR_CLI_SKIPPED', 'trust', 'list', '--dir', dirWithBadLine().dir);
  const ok = cli('keys', 'list', '--dir', dir, '--json');
  assert.equal(ok.status, 0);
  assert.deepEqual(Object.keys(ok.json()).sort(), ['result', 'skipped']);
  // docs/CLI.md's table says the same, code for code.
  const documented = {};
  for (const [, code, column] of fs.readFileSync(path.join(REPO, 'docs', 'CLI.md'), 'utf8').matchAll(/^\| (\d) \| ([^|]*) \|/gm)) {
    documented[code] = /`(ERR_OTR_[A-Z_]+)`/.exec(column)?.[1];
  }
  assert.deepEqual(Object.keys(documented), ['0', '1', '2', '3', '4', '5', '6']);
  for (const code of ['2', '3', '4', '5', '6']) assert.equal(documented[code], seen[code], `exit code ${code}`);
});

test(
  'lines skipped from a fingerprints file are reported with the real file and line (and in --json), exit code 6 unless --force (it was a Node warning naming a temp copy, exit 0)',
  T,
  () => {
    const { dir, file } = dirWithBadLine();
    const before = contents(dir);
    for (const command of [
      ['trust', 'list'],
      ['keys', 'list'],
    ]) {
      const text = cli(...command, '--dir', dir);
      assert.equal(text.status, 6, text.stderr);
      assert.match(text.stderr, new RegExp(`^protocol-otr: ${escape(file)} line 2 skipped: .+$`, 'm'));
      assert.match(text.stderr, /--force/);
      assert.doesNotMatch(text.stderr, /Warning|\.protocol-otr-read-|orig-/, 'no Node warning, no temporary copy named');
      assert.ok(text.stdout.length > 0, 'what could be read is shown');
      const json = cli(...command, '--dir', dir, '--json').json();
      assert.deepEqual(json.skipped, [{ file, line: 2, reason: json.skipped[0].reason }]);
      assert.equal(json.error.code, 'ERR_OTR_CLI_SKIPPED');
      const forced = cli(...command, '--dir', dir, '--json', '--force');
      assert.equal(forced.status, 0, forced.stderr);
      assert.deepEqual(forced.json().skipped, json.skipped);
      assert.deepEqual(forced.json().result, json.result);
    }
    assert.equal(cli('trust', 'list', '--dir', dir, '--json').result().length, 2, 'the two good lines');
    // A writing command writes nothing without --force ...
    const refused = cli('trust', 'verify', ALICE, PROTO, 'carol@example.org', CAROL_HEX, '--dir', dir, '--json');
    assert.equal(refused.status, 6, refused.stderr);
    assert.match(refused.stderr, /nothing was written/);
    assert.deepEqual(contents(dir), before, 'the files are as they were');
    // ... and with it rewrites the file without the line, keeping the original.
    const forced = cli('trust', 'verify', ALICE, PROTO, 'carol@example.org', CAROL_HEX, '--dir', dir, '--json', '--force');
    assert.equal(forced.status, 0, forced.stderr);
    const [line] = forced.json().skipped;
    assert.equal(line.file, file);
    assert.equal(fs.readFileSync(line.originalKeptAs).toString('base64'), before['otr.fingerprints'], 'the original is kept as it was');
    assert.match(forced.stderr, new RegExp(`original is kept as ${escape(line.originalKeptAs)}`));
    assert.equal(fingerprintLines(file).length, 2);
    // An import refuses a source with such lines, naming the source's file.
    const source = dirWithBadLine();
    const target = tmpdir('otr-cli-target-');
    const imported = cli('import', '--from', 'pidgin', source.dir, '--dir', target, '--json');
    assert.equal(imported.status, 6, imported.stderr);
    assert.equal(imported.json().skipped[0].file, source.file);
    assert.deepEqual(fs.readdirSync(target), [], 'nothing was imported');
    assert.equal(cli('import', '--from', 'pidgin', source.dir, '--dir', target, '--force').status, 0);
  },
);

test(
  '--version prints the package version; no arguments is the usage on stderr with exit code 2; "keys" alone is its usage; --help works everywhere',
  T,
  () => {
    const version = cli('--version');
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout, `${PKG.version}\n`);
    const none = cli();
    assert.equal(none.status, 2);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /usage: protocol-otr <command>/);
    const keys = cli('keys');
    assert.equal(keys.status, 2);
    assert.match(keys.stderr, /usage: protocol-otr keys <list\|fingerprint\|generate>/);
    assert.doesNotMatch(keys.stderr, /unknown command/);
    const dir = tmpdir('otr-cli-');
    for (const [args, usage] of [
      [[], /usage: protocol-otr <command>/],
      [['keys'], /usage: protocol-otr keys <list\|fingerprint\|generate>/],
      [['trust'], /usage: protocol-otr trust <list\|verify\|distrust\|forget>/],
      [['db'], /usage: protocol-otr db <import\|export>/],
      [['keys', 'list'], /usage: protocol-otr keys list \[options\]/],
      [['keys', 'generate', 'bridge@example.org', 'prpl-irc', '--dir', dir], /usage: protocol-otr keys generate <account> <protocol>/],
      [['trust', 'verify'], /usage: protocol-otr trust verify <account> <protocol> <contact> <fingerprint>/],
      [['import'], /usage: protocol-otr import --from/],
      [['db', 'export'], /usage: protocol-otr db export --db/],
    ]) {
      for (const flag of ['--help', '-h']) {
        const r = cli(...args, flag);
        assert.equal(r.status, 0, `${args.join(' ')} ${flag}: ${r.stderr}`);
        assert.match(r.stdout, usage, `${args.join(' ')} ${flag}`);
      }
    }
    assert.deepEqual(fs.readdirSync(dir), [], '--help runs nothing: no key was generated');
  },
);
