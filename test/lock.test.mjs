// The advisory lock on a file set: one OTR instance per set, across processes and within one;
// the operator CLI reads while a bridge holds the set and is refused when it would write.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { OTR, OtrError } from 'protocol-otr';
import { CHILDREN, REPO, T, cannotRun, closeAll, filesIn, openOTR, readablePackageCopy, runNode, tmpdir } from './helpers/harness.mjs';

after(closeAll);

const PKG = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
const CLI = path.join(REPO, PKG.bin['protocol-otr']);
const CHILD = path.join(REPO, 'test', 'helpers', 'hold-files-child.mjs');

const cli = (...args) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });

function contents(dir) {
  const out = {};
  for (const name of fs.readdirSync(dir).sort()) out[name] = fs.readFileSync(path.join(dir, name)).toString('base64');
  return out;
}

// Starts a bridge-like child on dir; resolves once it holds the files.
function holder(dir, mode = 'close') {
  const child = spawn(process.execPath, [CHILD, dir, mode], { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const lines = [];
  const waiters = [];
  child.stdout.on('data', (chunk) => {
    out += chunk;
    let nl;
    while ((nl = out.indexOf('\n')) >= 0) {
      lines.push(out.slice(0, nl));
      out = out.slice(nl + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
  // 'close', not 'exit': the child's last lines may still be in its stdout pipe when it exits.
  let closed = false;
  const exited = new Promise((resolve) =>
    child.on('close', (code) => {
      closed = true;
      resolve(code);
    }),
  );
  const until = (prefix) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const line = lines.find((l) => l.startsWith(prefix));
        if (line) return resolve(line);
        if (closed) return reject(new Error(`child exited (${child.exitCode}) before '${prefix}'`));
        waiters.push(check);
      };
      exited.then(() => waiters.push(() => {}) && check());
      check();
    });
  return { child, until, exited };
}

const mkfifo = (file) => {
  const made = spawnSync('mkfifo', ['-m', '644', file], { encoding: 'utf8' });
  assert.equal(made.status, 0, `mkfifo ${file}: ${made.error?.message ?? made.stderr}`);
};
const NOBODY = 65534;

test(
  'Files: a FIFO where a lock file goes is refused, naming what to remove, also for a user who cannot write it (it hung new OTR() forever)',
  T,
  async (t) => {
    // Our own FIFO: opening it read-write does not block, and it was taken as the lock.
    const dir = tmpdir();
    const files = filesIn(dir);
    for (const [kind, code] of [
      ['privkeysFile', 'ERR_OTR_PRIVKEY_FILE'],
      ['contactsFile', 'ERR_OTR_FINGERPRINTS_FILE'],
      ['instanceTagsFile', 'ERR_OTR_INSTAG_FILE'],
    ]) {
      const lock = `${files[kind]}.lock`;
      mkfifo(lock);
      assert.throws(
        () => new OTR(files),
        (error) => {
          assert.equal(error.code, code, error.message);
          assert.match(error.message, /is a FIFO, not a regular file/);
          assert.ok(error.message.includes(`rm ${lock}`), error.message);
          return true;
        },
        kind,
      );
      fs.rmSync(lock);
    }
    await openOTR(dir).close();

    // Another user's FIFO, which this user may only open for reading: that open waited for a
    // writer that never came.
    if (process.getuid?.() !== 0) return cannotRun(t, 'needs root to leave a FIFO for an unprivileged user (uid 65534)');
    const pkg = readablePackageCopy([path.join(CHILDREN, 'load-check.mjs')]);
    const shared = tmpdir();
    fs.chmodSync(shared, 0o755);
    fs.chownSync(shared, NOBODY, NOBODY);
    const lock = `${filesIn(shared).privkeysFile}.lock`;
    mkfifo(lock);
    const result = await runNode(pkg.script('load-check.mjs'), ['run', shared], { uid: NOBODY, gid: NOBODY, cwd: pkg.root, env: pkg.env, timeoutMs: 60_000 });
    assert.equal(result.code, 0, result.stderr);
    const outcome = JSON.parse(result.stdout.trim().split('\n').at(-1));
    assert.equal(outcome.code, 'ERR_OTR_PRIVKEY_FILE', outcome.message);
    assert.ok(outcome.message.includes(`rm ${lock}`), outcome.message);
  },
);

test('a second new OTR() on the same files in one process fails with ERR_OTR_LOCKED until the first is closed', T, async () => {
  const dir = tmpdir();
  const first = openOTR(dir);
  assert.throws(
    () => new OTR(filesIn(dir)),
    (error) => {
      assert.ok(error instanceof OtrError);
      assert.equal(error.code, 'ERR_OTR_LOCKED');
      assert.match(error.message, /otr\.private_key is in use by another OTR instance in this process/);
      assert.match(error.message, /Close that instance first/);
      return true;
    },
  );
  // The same files named another way (a relative path) are the same set.
  const relative = path.relative(process.cwd(), dir);
  assert.throws(() => new OTR(filesIn(relative)), { code: 'ERR_OTR_LOCKED' });
  // Sharing only the fingerprints file is enough to conflict.
  const other = tmpdir();
  assert.throws(
    () => new OTR({ ...filesIn(other), contactsFile: filesIn(dir).contactsFile }),
    (error) => {
      assert.equal(error.code, 'ERR_OTR_LOCKED');
      assert.match(error.message, /otr\.fingerprints is in use/);
      return true;
    },
  );
  // A failed attempt leaves nothing locked behind: the other set opens on its own.
  const separate = openOTR(other);
  await separate.close();
  await first.close();
  const again = openOTR(dir);
  await again.close();
});

test('another process holding the files: new OTR() fails naming its pid; after it closes, the files open', T, async () => {
  const dir = tmpdir();
  const bridge = holder(dir);
  const pid = Number((await bridge.until('ready')).split(' ')[1]);
  assert.throws(
    () => new OTR(filesIn(dir)),
    (error) => {
      assert.equal(error.code, 'ERR_OTR_LOCKED');
      assert.match(error.message, new RegExp(`another OTR instance \\(process ${pid}\\)`));
      return true;
    },
  );
  bridge.child.stdin.end();
  await bridge.until('closed');
  await bridge.exited;
  const otr = openOTR(dir);
  assert.ok(otr.findAccount('bridge@example.org', 'prpl-jabber'), "the bridge's key was written and loads");
  await otr.close();
});

test('a holder that exits without close() releases the lock with its process', T, async () => {
  const dir = tmpdir();
  const bridge = holder(dir, 'exit');
  await bridge.until('ready');
  assert.throws(() => new OTR(filesIn(dir)), { code: 'ERR_OTR_LOCKED' });
  bridge.child.stdin.end();
  await bridge.exited;
  const otr = openOTR(dir);
  await otr.close();
});

test('while a bridge holds the files, the CLI reads them and refuses to write them (exit 3), changing nothing', T, async () => {
  const dir = tmpdir();
  const bridge = holder(dir);
  const pid = (await bridge.until('ready')).split(' ')[1];
  const before = contents(dir);

  const list = cli('keys', 'list', '--dir', dir, '--json');
  assert.equal(list.status, 0, list.stderr);
  const [key] = JSON.parse(list.stdout).result;
  assert.equal(key.account, 'bridge@example.org');
  assert.match(key.fingerprint, /^[0-9A-F]{8}( [0-9A-F]{8}){4}$/);
  const fp = cli('keys', 'fingerprint', 'bridge@example.org', 'prpl-jabber', '--dir', dir);
  assert.equal(fp.status, 0, fp.stderr);
  assert.equal(fp.stdout.trim(), key.fingerprint);
  const trust = cli('trust', 'list', '--dir', dir, '--json');
  assert.equal(trust.status, 0, trust.stderr);
  assert.deepEqual(JSON.parse(trust.stdout).result, []);

  for (const args of [
    ['keys', 'generate', 'other@example.org', 'prpl-jabber'],
    ['trust', 'verify', 'bridge@example.org', 'prpl-jabber', 'bob@example.org', '0123456789ABCDEF0123456789ABCDEF01234567'],
  ]) {
    const write = cli(...args, '--dir', dir);
    assert.equal(write.status, 3, `${args.join(' ')}: ${write.stderr}`);
    assert.match(write.stderr, new RegExp(`refused: .*process ${pid}`));
    assert.match(write.stderr, /stop the bridge/);
  }
  assert.deepEqual(contents(dir), before, 'nothing changed on disk');

  bridge.child.stdin.end();
  await bridge.until('closed');
  await bridge.exited;
  const generate = cli('keys', 'generate', 'other@example.org', 'prpl-jabber', '--dir', dir, '--json');
  assert.equal(generate.status, 0, generate.stderr);
  assert.equal(JSON.parse(generate.stdout).result.created, true);
});
