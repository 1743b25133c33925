// Issue 4, item 4 — crash-safe files: SIGKILL at random points while the key, fingerprint and
// instance tag files are being rewritten; a full disk; corrupt, truncated, empty, unreadable
// and directory-instead-of-file inputs. Files are always the old or the new version, loadable,
// the key file stays 0600, and a refused input changes nothing on disk.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { OTR } from 'protocol-otr';
import {
  CHILDREN,
  LONG,
  PROTO,
  cannotRun,
  closeAll,
  filesIn,
  readablePackageCopy,
  rejectsCode,
  runNode,
  snapshot,
  tmpdir,
  writeKeyFile,
} from '../helpers/harness.mjs';

const T = { timeout: 600_000 };
after(closeAll);

const hexOf = (human) => human.replace(/ /g, '').toLowerCase();

// What a fresh OTR loads from dir: accounts (name → instance tag) and owner's trust.
async function load(dir) {
  const otr = new OTR(filesIn(dir));
  try {
    const accounts = new Map(otr.accounts().map((a) => [a.name, a.instanceTag]));
    const trust = new Map();
    const owner = otr.findAccount('owner@example.org', PROTO);
    for (const contact of owner?.contacts() ?? []) {
      for (const fp of contact.fingerprints()) trust.set(`${contact.name} ${hexOf(fp.hash)}`, fp.isVerified);
    }
    return { accounts, trust };
  } finally {
    await otr.close();
  }
}

// Runs a child writer and kills it with SIGKILL `delay` ms after it printed "ready" (the kill
// lands anywhere in its writes: every assertion holds wherever it lands).
function killAfterReady(script, args, delay) {
  let buffered = '';
  let armed = false;
  return runNode(path.join(CHILDREN, script), args, {
    timeoutMs: 60_000,
    onStdout: (chunk, child) => {
      buffered += chunk;
      if (!armed && buffered.includes('ready\n')) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delay);
      }
    },
  });
}

test('SIGKILL at random points while keys, fingerprints and instance tags are written: every file is the old or the new version', T, async () => {
  const dir = tmpdir('otr-rel-kill-');
  const runs = LONG ? 200 : 30;
  const accounts = new Set(); // confirmed on disk
  const trust = new Map(); // `${contact} ${hex}` → verified, confirmed on disk
  const stats = { runs: 0, killedMidStep: 0, newVersion: 0, oldVersion: 0, steps: 0, tempFilesLeft: 0 };
  for (let run = 0; run < runs; run++) {
    const delay = Math.random() * 400;
    const result = await killAfterReady('file-writer.mjs', ['run', dir, String(run)], delay);
    assert.equal(result.signal, 'SIGKILL', `run ${run}: the writer must only end by our SIGKILL (code ${result.code}, stderr ${result.stderr})`);
    assert.equal(result.stderr, '', `run ${run}: the writer reported nothing on stderr`);
    stats.runs++;

    // Replay what the writer confirmed; the last step may have been cut anywhere.
    let pending;
    for (const line of result.stdout.split('\n')) {
      if (line.startsWith('want ')) pending = line.slice(5).split(' ');
      if (line === 'done') {
        stats.steps++;
        if (pending[0] === 'key') accounts.add(pending[1]);
        else trust.set(`${pending[1]} ${pending[2]}`, pending[3] === '1');
        pending = undefined;
      }
    }

    // Every file loads (never torn), and holds at least everything confirmed.
    const files = filesIn(dir);
    assert.equal(fs.statSync(files.privkeysFile).mode & 0o777, 0o600, `run ${run}: key file mode`);
    let loaded;
    try {
      loaded = await load(dir);
    } catch (error) {
      assert.fail(`run ${run}: the files no longer load after SIGKILL (${error.code}: ${error.message}); last step ${pending?.join(' ')}`);
    }
    for (const name of accounts) {
      assert.ok(loaded.accounts.has(name), `run ${run}: confirmed account ${name} is in the key file`);
      assert.ok(loaded.accounts.get(name) > 0, `run ${run}: confirmed account ${name} has its instance tag`);
    }
    for (const [key, verified] of trust) {
      const isPending = pending && pending[0] === 'trust' && key === `${pending[1]} ${pending[2]}`;
      if (isPending) continue;
      assert.equal(loaded.trust.get(key), verified, `run ${run}: trust of ${key}`);
    }
    assert.equal(
      loaded.trust.size,
      trust.size + (pending?.[0] === 'trust' && !trust.has(`${pending[1]} ${pending[2]}`) && loaded.trust.has(`${pending[1]} ${pending[2]}`) ? 1 : 0),
      `run ${run}: no fingerprint appeared or vanished`,
    );

    // The step cut by the kill: on disk it is entirely before or entirely after.
    if (pending) {
      stats.killedMidStep++;
      if (pending[0] === 'key') {
        if (loaded.accounts.has(pending[1])) {
          stats.newVersion++;
          accounts.add(pending[1]); // the instance tag may be missing: account() adds it later
        } else {
          stats.oldVersion++;
        }
      } else {
        const key = `${pending[1]} ${pending[2]}`;
        const wanted = pending[3] === '1';
        const now = loaded.trust.get(key);
        const before = trust.get(key);
        assert.ok(now === wanted || now === before, `run ${run}: trust of ${key} is old (${before}) or new (${wanted}), got ${now}`);
        if (now === wanted && now !== before) stats.newVersion++;
        else stats.oldVersion++;
        if (now !== undefined) trust.set(key, now);
      }
    }
    // Account lines the kill separated from their instance tag get one on the next run.
    for (const [name, tag] of loaded.accounts) if (tag === 0) accounts.delete(name);
  }
  stats.tempFilesLeft = fs.readdirSync(dir).filter((n) => n.includes('.tmp-')).length;
  console.log(
    `# kill -9: ${stats.runs} runs, ${stats.steps} completed writes, ${stats.killedMidStep} kills inside a write step (old version kept ${stats.oldVersion}, new version ${stats.newVersion}), ${accounts.size} accounts, ${trust.size} fingerprints, ${stats.tempFilesLeft} temp files left behind`,
  );
  assert.ok(stats.killedMidStep > 0, 'some kills landed inside a write step');
});

function mountTmpfs(dir, size = '64k') {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return String(error.stderr || error.message).trim();
  }
}

test('a full disk (64 KiB tmpfs): writes reject with ERR_OTR_FILE_WRITE and the previous files stay intact', T, async (t) => {
  const mnt = tmpdir('otr-rel-full-');
  const why = mountTmpfs(mnt);
  if (why !== undefined) return cannotRun(t, `cannot mount a tmpfs (needs root and mount permission): ${why}`);
  let otr;
  try {
    const dir = path.join(mnt, 'otr');
    fs.mkdirSync(dir);
    await writeKeyFile(dir, ['alice@example.org']);
    otr = new OTR(filesIn(dir));
    const alice = await otr.account('alice@example.org', PROTO); // writes the instance tags
    const bobFp = crypto.randomBytes(20).toString('hex');
    await alice.contact('bob@example.org', bobFp, true); // writes the fingerprints
    const before = snapshot(dir);

    // Fill the file system.
    const filler = path.join(mnt, 'filler');
    const fd = fs.openSync(filler, 'w');
    const chunk = Buffer.alloc(1024, 0x61);
    let filled = 0;
    try {
      for (;;) filled += fs.writeSync(fd, chunk);
    } catch (error) {
      assert.equal(error.code, 'ENOSPC');
    } finally {
      fs.closeSync(fd);
    }

    // A new account: its key is generated but cannot be stored.
    const keyError = await rejectsCode(otr.account('carol@example.org', PROTO), 'ERR_OTR_FILE_WRITE', 'account() on a full disk');
    assert.match(keyError.message, /space|write|sync/i);
    assert.equal(otr.findAccount('carol@example.org', PROTO), undefined, 'the account that could not be stored does not exist');
    assert.equal(otr.findAccount('alice@example.org', PROTO).fingerprint, alice.fingerprint, 'the old key is still in use');
    // A trusted fingerprint cannot be stored either; nor can a change of trust.
    await rejectsCode(
      alice.contact('dave@example.org', crypto.randomBytes(20).toString('hex'), true),
      'ERR_OTR_FILE_WRITE',
      'contact(fp, true) on a full disk',
    );
    const bob = alice.findContact('bob@example.org');
    await rejectsCode(bob.fingerprints()[0].setVerified(false), 'ERR_OTR_FILE_WRITE', 'setVerified() on a full disk');
    assert.deepEqual(snapshot(dir), before, 'the previous files are intact, and no temp file is left');

    // Space again: everything works, and a fresh instance loads it.
    fs.unlinkSync(filler);
    const carol = await otr.account('carol@example.org', PROTO);
    await bob.fingerprints()[0].setVerified(true);
    await otr.close();
    const again = new OTR(filesIn(dir));
    assert.equal(again.findAccount('carol@example.org', PROTO).fingerprint, carol.fingerprint);
    assert.equal(again.findAccount('alice@example.org', PROTO).fingerprint, alice.fingerprint);
    const bobAgain = again.findAccount('alice@example.org', PROTO).findContact('bob@example.org');
    assert.equal(hexOf(bobAgain.fingerprints().find((f) => hexOf(f.hash) === bobFp).hash), bobFp);
    await again.close();
    console.log(
      `# full disk: filled ${Math.round(filled / 1024)} KiB; account(), contact(fp, true) and setVerified() rejected ERR_OTR_FILE_WRITE, files unchanged`,
    );
  } finally {
    await otr?.close().catch(() => {});
    execFileSync('umount', [mnt]);
  }
});

// A good set of files: alice's key, her instance tag, bob's trusted fingerprint.
async function goodDir() {
  const dir = tmpdir('otr-rel-bad-');
  const otr = new OTR(filesIn(dir)); // a real key generation writes the key and the instance tag
  const alice = await otr.account('alice@example.org', PROTO);
  await alice.contact('bob@example.org', crypto.randomBytes(20).toString('hex'), true);
  await otr.close();
  for (const file of Object.values(filesIn(dir))) assert.ok(fs.existsSync(file), `${file} was written`);
  return dir;
}

const KINDS = {
  privkeysFile: 'ERR_OTR_PRIVKEY_FILE',
  contactsFile: 'ERR_OTR_FINGERPRINTS_FILE',
  instanceTagsFile: 'ERR_OTR_INSTAG_FILE',
};

// Each damages one file of a good dir and returns the files to open (default: filesIn(dir)).
const DAMAGE = {
  'corrupt (random bytes)': (file) => fs.writeFileSync(file, crypto.randomBytes(700)),
  'corrupt (text that is not this format)': (file) => fs.writeFileSync(file, 'hello\tworld\n(not a key file\n'),
  'truncated in the middle of a line': (file) => {
    const bytes = fs.readFileSync(file);
    const text = bytes.toString('utf8');
    // The middle of the last record: a cut at a line end would be a valid shorter file.
    const lastLine = text.trimEnd().lastIndexOf('\n') + 1;
    const cut = Math.max(lastLine + 5, Math.floor(text.length / 2));
    fs.writeFileSync(file, bytes.subarray(0, Math.min(cut, bytes.length - 3)));
  },
  empty: (file) => fs.writeFileSync(file, ''),
  'a directory instead of a file': (file) => {
    fs.rmSync(file);
    fs.mkdirSync(file);
  },
  'a path whose parent is a regular file': (file, dir, kind) => {
    const parent = path.join(dir, 'not-a-directory');
    fs.writeFileSync(parent, 'I am a file\n');
    return { ...filesIn(dir), [kind]: path.join(parent, path.basename(file)) };
  },
};

// libotr itself writes an empty fingerprints file when there are no fingerprints, and an
// instance tags file without tags: those two are valid empty lists, not errors.
const VALID = new Set(['contactsFile empty', 'instanceTagsFile empty']);
// A fingerprints file whose lines libotr cannot read loads without them (each reported), and
// the original is kept as a dated copy before anything rewrites it.
const SKIPPED = new Set([
  'contactsFile corrupt (random bytes)',
  'contactsFile corrupt (text that is not this format)',
  'contactsFile truncated in the middle of a line',
]);

for (const [kind, code] of Object.entries(KINDS)) {
  for (const [what, damage] of Object.entries(DAMAGE)) {
    const valid = VALID.has(`${kind} ${what}`);
    const skipped = SKIPPED.has(`${kind} ${what}`);
    if (skipped) {
      test(`${kind}: ${what} → loads without the lines libotr cannot read, reports each, keeps the original as a dated copy`, T, async () => {
        const dir = await goodDir();
        const file = filesIn(dir)[kind];
        damage(file, dir, kind);
        const original = fs.readFileSync(file);
        const otr = new OTR(filesIn(dir));
        const errors = [];
        otr.on('error', (e) => errors.push(e));
        assert.ok(otr.findAccount('alice@example.org', PROTO), 'the accounts load');
        assert.ok(otr.loadReport.skipped.length >= 1);
        assert.deepEqual(fs.readFileSync(otr.loadReport.copies[0]), original);
        await otr.close();
        assert.equal(errors.length, otr.loadReport.skipped.length);
        assert.ok(errors.every((e) => e.code === code && e.message.includes(path.basename(file))));
      });
      continue;
    }
    test(`${kind}: ${what} → ${valid ? 'loads as an empty list' : code}, and nothing changes on disk`, T, async () => {
      const dir = await goodDir();
      const file = filesIn(dir)[kind];
      if (kind === 'contactsFile' && what.startsWith('truncated')) {
        // Make the last line long enough to cut inside the fingerprint.
        assert.ok(fs.readFileSync(file, 'utf8').includes('bob@example.org'));
      }
      const files = damage(file, dir, kind) ?? filesIn(dir);
      const before = snapshot(dir);
      // The constructor reads the files: a file that cannot be used throws there, and no
      // instance exists to write anything over it.
      let otr;
      let error;
      try {
        otr = new OTR(files);
      } catch (e) {
        error = e;
      }
      if (valid) {
        assert.equal(error, undefined, `loads: ${error?.message}`);
        assert.ok(otr.findAccount('alice@example.org', PROTO));
      } else {
        assert.equal(otr, undefined, 'no instance over a file that cannot be used');
        await rejectsCode(Promise.reject(error ?? new Error('loaded without an error')), code, `${kind} ${what}`);
        assert.ok(
          error.message.includes(path.basename(files[kind])) || error.message.includes(path.dirname(files[kind])),
          `the message names the file: ${error.message}`,
        );
      }
      await otr?.close(); // its jobs done, key generation joined: nothing can write after this
      assert.deepEqual(snapshot(dir), before, 'nothing changed on disk (bytes, mtime, mode, no new files)');
    });
  }
}

// The unprivileged child runs from a world-readable copy of the package: the checkout itself
// may sit in a directory only its owner can enter.
const NOBODY = 65534;

test('files the process may not read (EACCES, run as an unprivileged user) give a clear error and change nothing', T, async (t) => {
  if (process.getuid?.() !== 0) return cannotRun(t, 'needs root to run a child as an unprivileged user (uid 65534)');
  const pkg = readablePackageCopy([path.join(CHILDREN, 'load-check.mjs')]);
  for (const [kind, code] of Object.entries(KINDS)) {
    const dir = await goodDir();
    fs.chmodSync(dir, 0o755);
    for (const f of Object.values(filesIn(dir))) fs.chownSync(f, NOBODY, NOBODY);
    fs.chmodSync(filesIn(dir)[kind], 0o000);
    const before = snapshot(dir);
    const result = await runNode(pkg.script('load-check.mjs'), ['run', dir], { uid: NOBODY, gid: NOBODY, cwd: pkg.root, env: pkg.env });
    assert.equal(result.code, 0, result.stderr);
    const outcome = JSON.parse(result.stdout.trim().split('\n').at(-1));
    assert.equal(outcome.name, 'OtrError', `${kind}: ${result.stdout}`);
    assert.equal(outcome.code, code, `${kind}: ${outcome.message}`);
    assert.match(outcome.message, /Permission denied/, outcome.message);
    assert.deepEqual(snapshot(dir), before, `${kind}: nothing changed on disk`);
  }
});

test(
  'SIGKILL while an OTR running contacts on several threads (several user states) writes its fingerprints: the file loads whole, with every confirmed trust',
  T,
  async () => {
    const dir = tmpdir('otr-rel-multi-');
    const peerDir = tmpdir('otr-rel-multi-peer-');
    await writeKeyFile(dir, ['owner@example.org']);
    await writeKeyFile(peerDir, ['peer@example.org']);
    const runs = LONG ? 60 : 12;
    const confirmed = new Map(); // `${contact} ${hex}` → true, confirmed on disk
    const stats = { runs: 0, pendingAtKill: 0, learnt: 0 };
    for (let run = 0; run < runs; run++) {
      const delay = 50 + Math.random() * 500;
      const result = await killAfterReady('multi-state-writer.mjs', ['run', dir, peerDir, String(run)], delay);
      assert.equal(result.signal, 'SIGKILL', `run ${run}: the writer must only end by our SIGKILL (code ${result.code}, stderr ${result.stderr})`);
      stats.runs++;
      const wanted = new Map();
      for (const line of result.stdout.split('\n')) {
        const [word, id, contact, hex] = line.split(' ');
        if (word === 'want') wanted.set(id, `${contact} ${hex}`);
        if (word === 'done') {
          confirmed.set(wanted.get(id), true);
          wanted.delete(id);
        }
      }
      stats.pendingAtKill += wanted.size;

      // The file is whole: every line well formed, no line twice, nothing skipped at load.
      const lines = fs.readFileSync(filesIn(dir).contactsFile, 'utf8').split('\n').filter(Boolean);
      for (const line of lines) assert.match(line, /^[^\t]+\towner@example\.org\tprpl-jabber\t[0-9a-f]{40}\t(verified)?$/, `run ${run}: line ${line}`);
      assert.equal(new Set(lines.map((l) => l.split('\t').slice(0, 4).join('\t'))).size, lines.length, `run ${run}: no fingerprint twice`);
      const otr = new OTR(filesIn(dir));
      try {
        assert.deepEqual(otr.loadReport.skipped, [], `run ${run}: nothing skipped at load`);
        const loaded = new Map();
        for (const contact of otr.findAccount('owner@example.org', PROTO)?.contacts() ?? []) {
          for (const fp of contact.fingerprints()) loaded.set(`${contact.name} ${hexOf(fp.hash)}`, fp.isVerified);
        }
        for (const key of confirmed.keys()) assert.equal(loaded.get(key), true, `run ${run}: confirmed trust of ${key}`);
        for (const key of wanted.values()) assert.ok(loaded.get(key) !== false || !confirmed.has(key), `run ${run}: ${key} is old or new`);
        stats.learnt = loaded.size;
      } finally {
        await otr.close();
      }
      assert.deepEqual(
        fs.readdirSync(dir).filter((n) => n.includes('.tmp-')),
        [],
        `run ${run}: no temp file left after a load`,
      );
    }
    console.log(
      `# kill -9 of a multi-state OTR: ${stats.runs} runs, ${confirmed.size} trust writes confirmed, ${stats.pendingAtKill} in flight at a kill, ${stats.learnt} fingerprints on disk at the end`,
    );
    assert.ok(confirmed.size > 0, 'some trust writes completed');
  },
);
