// Several nodes over one PostgreSQL (a throwaway server these tests start and stop): one
// identity, trust shared live, one owner per contact, a takeover after kill -9, and rows
// under concurrent changes. Each node is a child process (test/helpers/pg-node.mjs); the
// remote user is an OTR instance over files in this process. Figures are printed, not
// asserted.

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { OTR, PostgresStore } from 'protocol-otr';
import { T, REPO, Net, tmpdir, filesIn, cannotRun, closeAll, makeSecure, openOTR, rejectsCode, snapshot, writeKeyFile } from './helpers/harness.mjs';
import { findPostgres, startPostgres } from '../scripts/throwaway-postgres.mjs';
import { startNode, children, closeNodes } from './helpers/pg-cluster.mjs';
import { hashRing, talkOnNodes } from './helpers/ring-scenario.mjs';

const require = createRequire(import.meta.url);
const ACCOUNT = { name: 'bridge@example.org', protocol: 'prpl-jabber' };

let server;

before(async () => {
  // On a Unix socket and on TCP (loopback): the multi-node tests below go over TCP.
  if (findPostgres().bin) server = await startPostgres({ tcp: ['127.0.0.1'] });
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await closeAll();
  await server?.stop();
});

function needsPostgres(t) {
  if (server) return true;
  cannotRun(t, findPostgres().why);
  return false;
}

async function query(sql, values, connection = server.connection) {
  const { Client } = require('pg');
  const db = new Client(connection);
  await db.connect();
  try {
    return (await db.query(sql, values)).rows;
  } finally {
    await db.end();
  }
}

async function openNodes(prefix, names = ['node-a', 'node-b'], extra = {}) {
  const nodes = names.map((name) => startNode(name));
  await Promise.all(nodes.map((n) => n.ready));
  const opened = await Promise.all(
    nodes.map((n) => n.call('open', { connection: server.connection, prefix, node: n.name, accounts: [ACCOUNT], workDir: workDir(), ...extra })),
  );
  return { nodes, opened };
}

// Where a node's working copy goes: a temp dir closeAll() removes, so a node killed with -9
// leaves no key behind.
const workDir = () => tmpdir('otr-pg-work-');
const hex = (i) => i.toString(16).padStart(40, '0');
// Refused because `node` owns the contact.
const ownedBy = (node) => (e) => e.code === 'ERR_OTR_CONTACT_OWNED' && e.owner === node;

test('two processes racing to generate the account key end with one key: same fingerprint, same instance tag', T, async (t) => {
  if (!needsPostgres(t)) return;
  const prefix = 'race_';
  // Tables first, then hold inserts into the accounts table until both nodes are waiting to
  // insert the key each generated: a real race, decided by the database.
  const setup = new PostgresStore({ connection: server.connection, prefix });
  await setup.importFiles({});
  await setup.end();
  const { Client } = require('pg');
  const gate = new Client(server.connection);
  await gate.connect();
  await gate.query('BEGIN');
  await gate.query(`LOCK TABLE "${prefix}accounts" IN SHARE ROW EXCLUSIVE MODE`);
  const nodes = ['node-a', 'node-b'].map((name) => startNode(name));
  await Promise.all(nodes.map((n) => n.ready));
  const opening = nodes.map((n) => n.call('open', { connection: server.connection, prefix, node: n.name, accounts: [ACCOUNT], workDir: workDir() }));
  // (Another connection: inside the gate's transaction, pg_stat_activity is a frozen snapshot.)
  const watch = new Client(server.connection);
  await watch.connect();
  for (;;) {
    const { rows } = await watch.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO "${prefix}accounts"%'`,
    );
    if (rows[0].n === 2) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await watch.end();
  await gate.query('COMMIT');
  await gate.end();
  const [a, b] = await Promise.all(opening);
  try {
    assert.equal(a.keysGenerated.length, 1, 'node A generated a key');
    assert.equal(b.keysGenerated.length, 1, 'node B generated a key');
    assert.deepEqual([a.keysGenerated[0].stored, b.keysGenerated[0].stored].sort(), [false, true], 'exactly one key was stored');
    assert.equal(a.fingerprint, b.fingerprint);
    assert.equal(a.instag, b.instag);
    const rows = await query(`SELECT account, instance_tag FROM "${prefix}accounts"`);
    assert.equal(rows.length, 1);
    assert.equal(Number(rows[0].instance_tag), a.instag);
    console.log(`# both nodes generated a key; one stored, both use ${a.fingerprint}, instance tag ${a.instag.toString(16)}`);
  } finally {
    await closeNodes(nodes);
  }
});

test('a trust change on one node reaches the other node live (figure printed), and forgetting too', T, async (t) => {
  if (!needsPostgres(t)) return;
  const {
    nodes: [a, b],
    opened,
  } = await openNodes('trust_');
  try {
    assert.equal(opened[0].fingerprint, opened[1].fingerprint);
    const fp = hex(0xc0ffee);
    const figures = [];
    for (const verified of [true, false, true]) {
      const seen = b.next((m) => m.event === 'trust' && m.change.contact === 'carol' && m.change.verified === verified);
      const t0 = Date.now();
      const stored = await a.call('trust', { contact: 'carol', hex: fp, verified });
      const event = await seen;
      figures.push(`${stored - t0} ms stored by A, ${event.at - t0} ms until B's live state changed`);
      assert.equal(event.change.node, 'node-a');
      const onB = await b.call('fingerprints', { contact: 'carol' });
      assert.deepEqual(
        onB.map((f) => f.trust !== ''),
        [verified],
      );
    }
    console.log(`# trust change A -> B: ${figures.join('; ')}`);
    const rows = await query(`SELECT contact, fingerprint, trust, changed_by FROM "trust_fingerprints"`);
    assert.deepEqual(rows, [{ contact: 'carol', fingerprint: fp, trust: 'verified', changed_by: 'node-a' }]);
    // B changes it back: A hears of it.
    const back = a.next((m) => m.event === 'trust' && m.change.contact === 'carol' && !m.change.verified);
    await b.call('trust', { contact: 'carol', hex: fp, verified: false });
    assert.equal((await back).change.node, 'node-b');
    assert.deepEqual(
      (await a.call('fingerprints', { contact: 'carol' })).map((f) => f.trust),
      [''],
    );
  } finally {
    await closeNodes([a, b]);
  }
});

test('a contact cannot be owned by two processes at once; the refusal names the owner', T, async (t) => {
  if (!needsPostgres(t)) return;
  const {
    nodes: [a, b],
  } = await openNodes('lease_');
  try {
    await a.call('lease', { contact: 'carol' });
    await assert.rejects(b.call('lease', { contact: 'carol' }), (e) => ownedBy('node-a')(e) && /owned by node node-a/.test(e.message));
    await assert.rejects(b.call('channel', { contact: 'carol' }), (e) => e.code === 'ERR_OTR_NOT_OWNER');
    await a.call('channel', { contact: 'carol' });
    // Both ask for a free contact at once: one gets it.
    const both = await Promise.allSettled([a.call('lease', { contact: 'dave' }), b.call('lease', { contact: 'dave' })]);
    assert.equal(both.filter((r) => r.status === 'fulfilled').length, 1);
    assert.equal(both.find((r) => r.status === 'rejected').reason.code, 'ERR_OTR_CONTACT_OWNED');
    // A hands carol over.
    await a.call('release', { contact: 'carol' });
    await b.call('lease', { contact: 'carol' });
    await assert.rejects(a.call('lease', { contact: 'carol' }), ownedBy('node-b'));
  } finally {
    await closeNodes([a, b]);
  }
});

test(
  'a node whose lease connection is cut reconnects by itself and keeps its leases (nobody held them meanwhile): calls made meanwhile go on, the other node stays refused',
  T,
  async (t) => {
    if (!needsPostgres(t)) return;
    const {
      nodes: [a, b],
    } = await openNodes('cut_');
    try {
      const before = await a.call('lease', { contact: 'carol' });
      await a.call('channel', { contact: 'carol' });
      const suspended = a.next((m) => m.event === 'leasesSuspended');
      const restored = a.next((m) => m.event === 'leasesRestored');
      // The server ends node-a's lease connection (as a failover or a cut network would).
      const killed = await query(
        `SELECT pg_terminate_backend(l.pid) AS done FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
       WHERE l.locktype = 'advisory' AND s.application_name = 'node-a'`,
      );
      assert.deepEqual(
        killed.map((r) => r.done),
        [true],
      );
      assert.deepEqual((await suspended).contacts, ['carol']);
      assert.deepEqual((await restored).contacts, ['carol']);
      assert.equal(await a.call('hasChannel', { contact: 'carol' }), true);
      assert.deepEqual(await a.call('leases'), ['carol']);
      // Same lease, same token: nobody else held it.
      assert.equal((await a.call('lease', { contact: 'carol' })).token, before.token);
      await assert.rejects(b.call('lease', { contact: 'carol' }), ownedBy('node-a'));
      assert.equal((await a.call('lease', { contact: 'dave' })).node, 'node-a');
    } finally {
      await closeNodes([a, b]);
    }
  },
);

test('a key whose private number libgcrypt printed as raw bytes goes into the database intact: a node holding it makes an AKE', T, async (t) => {
  if (!needsPostgres(t)) return;
  // See test/fixtures/quoted-key/README.md: read as UTF-8 text, this key signs nothing its public
  // half verifies ("Bad signature" at the peer's end of every AKE).
  const dir = tmpdir('otr-quoted-');
  fs.copyFileSync(path.join(REPO, 'test', 'fixtures', 'quoted-key', 'otr.private_key'), filesIn(dir).privkeysFile);
  const store = new PostgresStore({ connection: server.connection, prefix: 'quoted_' });
  assert.deepEqual(await store.importFiles(filesIn(dir)), { accounts: 1, accountsKept: 0, fingerprints: 0 });
  await store.end();
  const [row] = await query('SELECT private_key FROM "quoted_accounts"');
  assert.match(row.private_key, /\(x #[0-9A-F]+#\)/, 'the number is stored as #hex#');
  assert.match(row.private_key, /^[\x20-\x7e\n]*$/, 'the stored key is ASCII');

  const node = new PostgresStore({ connection: server.connection, prefix: 'quoted_', accounts: [ACCOUNT], workDir: workDir() });
  const bridge = await OTR.open({ store: node });
  const peerDir = tmpdir('otr-quoted-peer-');
  await writeKeyFile(peerDir, ['carol@example.org']);
  const carol = openOTR(peerDir);
  await node.lease(ACCOUNT.name, ACCOUNT.protocol, 'carol@example.org');
  const link = new Net();
  const started = await link.connect(bridge, ACCOUNT.name, carol, 'carol@example.org');
  await makeSecure(link, started.a, started.b); // each side signs once in an AKE
  link.assertNoErrors();
  await bridge.close();
  await carol.close();
});

test('a key an earlier version stored damaged (U+FFFD in its private number) stops the open with ERR_OTR_STORE saying the fix; the fix works', T, async (t) => {
  if (!needsPostgres(t)) return;
  // What earlier versions stored for test/fixtures/quoted-key: its file read as UTF-8 text.
  const keyFile = path.join(REPO, 'test', 'fixtures', 'quoted-key', 'otr.private_key');
  const asText = fs.readFileSync(keyFile).toString('utf8');
  const damaged = asText.slice(asText.indexOf('(account'), asText.lastIndexOf(')')).trimEnd();
  assert.match(damaged, /\(x "[^"]*\ufffd/, 'the fixture read as UTF-8 loses bytes of x');
  const dir = tmpdir('otr-damaged-');
  fs.copyFileSync(keyFile, filesIn(dir).privkeysFile);
  const importer = new PostgresStore({ connection: server.connection, prefix: 'damaged_' });
  await importer.importFiles(filesIn(dir));
  await importer.end();
  await query('UPDATE "damaged_accounts" SET private_key = $1', [damaged]);

  const node = new PostgresStore({ connection: server.connection, prefix: 'damaged_', accounts: [ACCOUNT], workDir: workDir() });
  await assert.rejects(OTR.open({ store: node }), (error) => {
    assert.equal(error.code, 'ERR_OTR_STORE');
    assert.match(error.message, new RegExp(`stored private key of ${ACCOUNT.name} \\(${ACCOUNT.protocol}\\) is damaged`));
    assert.match(error.message, /"damaged_accounts" and import the original key file again \(protocol-otr database import\)/);
    return true;
  });
  const [row] = await query('SELECT private_key FROM "damaged_accounts"');
  assert.equal(row.private_key, damaged, 'the open changed nothing');

  // The fix the message gives: delete the row, import the original file again.
  await query('DELETE FROM "damaged_accounts"');
  const again = new PostgresStore({ connection: server.connection, prefix: 'damaged_' });
  await again.importFiles(filesIn(dir));
  await again.end();
  const fixed = new PostgresStore({ connection: server.connection, prefix: 'damaged_', accounts: [ACCOUNT], workDir: workDir() });
  const bridge = await OTR.open({ store: fixed });
  await bridge.close();
});

test('kill -9 of the owner: the other node takes the contact over, and the conversation resumes after a new AKE', T, async (t) => {
  if (!needsPostgres(t)) return;
  const {
    nodes: [a, b],
    opened,
  } = await openNodes('takeover_', ['node-a', 'node-b'], { leaseTimeoutSeconds: 10 });
  // The remote user: an OTR instance over files here, her messages go to whichever node owns her.
  const carolOtr = new OTR(filesIn(tmpdir('otr-carol-')));
  const carolAccount = await carolOtr.account('carol@example.org', 'prpl-jabber');
  let owner = a;
  const carol = { received: [], secure: 0, events: [] };
  const waits = new Set();
  const changed = () => waits.forEach((w) => w());
  // Resolves once carol's side satisfies `cond` (checked after each of her callbacks).
  const carolSees = (cond) =>
    new Promise((resolve) => {
      const check = () => cond() && (waits.delete(check), resolve());
      waits.add(check);
      check();
    });
  const channel = (await carolAccount.contact(ACCOUNT.name)).channel({
    onWrite: (_c, text) => owner.call('read', { contact: 'carol@example.org', text }).catch(() => {}),
    onRead: (_c, text) => (carol.received.push(text), changed()),
    onGoneSecure: () => (carol.secure++, changed()),
    onEvent: (_c, code) => (carol.events.push(code), changed()),
  });
  const relay = (node) => node.on((m) => m.event === 'write' && channel.read(m.text));
  relay(a);
  relay(b);
  try {
    await a.call('lease', { contact: 'carol@example.org' });
    const aSecure = a.next((m) => m.event === 'secure');
    await a.call('channel', { contact: 'carol@example.org', start: true });
    await aSecure;
    await carolSees(() => carol.secure === 1);
    const aRead = a.next((m) => m.event === 'read');
    await channel.write('hello A');
    assert.equal((await aRead).text, 'hello A');
    assert.equal(carol.secure, 1);
    await a.call('write', { contact: 'carol@example.org', text: 'hi carol' });
    await carolSees(() => carol.received.length === 1);
    assert.deepEqual(carol.received, ['hi carol']);

    a.child.kill('SIGKILL');
    const killed = Date.now();
    assert.equal((await a.exited).signal, 'SIGKILL');
    const lease = await b.call('lease', { contact: 'carol@example.org', waitMs: 10_000 });
    console.log(`# takeover: node-b holds the lease ${Date.now() - killed} ms after kill -9 of node-a (lease time 10 s)`);
    assert.equal(lease.node, 'node-b');
    owner = b;
    const bReads = [];
    b.on((m) => m.event === 'read' && bReads.push(m.text));
    const bEvents = [];
    b.on((m) => m.event === 'otrEvent' && bEvents.push(m.code));
    await b.call('channel', { contact: 'carol@example.org' });
    // Carol's client still has the old session: what she sends now is encrypted with keys
    // that died with node-a, so node-b cannot read it.
    await channel.write('lost in the takeover');
    // The new owner starts a new AKE (a query), which carol's client answers at once.
    const bSecure = b.next((m) => m.event === 'secure');
    await b.call('channel', { contact: 'carol@example.org', start: true, existing: true });
    await bSecure;
    await carolSees(() => carol.secure === 2);
    assert.deepEqual(bReads, [], 'the message sent into the old session is lost');
    const bRead = b.next((m) => m.event === 'read');
    await channel.write('hello B');
    assert.equal((await bRead).text, 'hello B');
    await b.call('write', { contact: 'carol@example.org', text: 'welcome back' });
    await carolSees(() => carol.received.length === 2);
    assert.deepEqual(carol.received, ['hi carol', 'welcome back']);
    // Same identity on both nodes: carol knows one fingerprint of the bridge.
    assert.deepEqual(
      channel.contact.fingerprints().map((f) => f.hash),
      [opened[0].fingerprint],
    );
    console.log(`# takeover: carol's client saw message events ${JSON.stringify(carol.events)}, node-b ${JSON.stringify(bEvents)}`);
  } finally {
    await carolOtr.close();
    await closeNodes([b]);
  }
});

test(
  "a node killed with -9 leaves its working copy (key included); the next store opened under the same workDir removes it, and a live node's stays",
  T,
  async (t) => {
    if (!needsPostgres(t)) return;
    const shared = workDir();
    const nodeDirs = () =>
      fs
        .readdirSync(shared)
        .filter((n) => n.startsWith('protocol-otr-node-'))
        .sort();
    const {
      nodes: [a],
    } = await openNodes('sweep_', ['node-a'], { workDir: shared });
    const [aDir] = nodeDirs();
    const {
      nodes: [b],
    } = await openNodes('sweep_', ['node-b'], { workDir: shared });
    const bDir = nodeDirs().find((n) => n !== aDir);
    assert.deepEqual(nodeDirs(), [aDir, bDir].sort(), "opening node-b left live node-a's copy alone");
    try {
      a.child.kill('SIGKILL');
      assert.equal((await a.exited).signal, 'SIGKILL');
      assert.ok(fs.existsSync(path.join(shared, aDir, 'otr.private_key')), 'the killed node left its key behind');
      const third = await OTR.open({
        store: new PostgresStore({ connection: server.connection, prefix: 'sweep_', accounts: [ACCOUNT], workDir: shared, node: 'node-c' }),
      });
      try {
        const left = nodeDirs();
        assert.ok(!left.includes(aDir), `the dead node's copy is gone: ${left}`);
        assert.ok(left.includes(bDir), "the live node's copy stays");
        assert.ok(fs.existsSync(path.join(shared, bDir, 'otr.private_key')));
        assert.equal(left.length, 2, "node-b's and the new node's");
      } finally {
        await third.close();
      }
      assert.deepEqual(nodeDirs(), [bDir], 'close() removed its own copy');
    } finally {
      await closeNodes([b]);
    }
    assert.deepEqual(nodeDirs(), []);
  },
);

// Stops a process at its first flock() of a file whose path contains $PAUSE_AT_FLOCK: it
// sends that path to the Unix socket $PAUSE_SOCKET and goes on once it reads a byte back. A
// sweep takes the marker's lock after it has looked at a directory and before it removes
// anything, so the test can change the directory exactly in between, every run.
const PAUSE_AT_FLOCK_C = `#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int flock(int fd, int operation) {
  static int (*real)(int, int);
  static int paused;
  if (!real) real = (int (*)(int, int))dlsym(RTLD_NEXT, "flock");
  const char *match = getenv("PAUSE_AT_FLOCK"), *where = getenv("PAUSE_SOCKET");
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = match && where && !paused ? readlink(link, target, sizeof target - 1) : -1;
  if (n > 0) {
    target[n] = 0;
    if (strstr(target, match)) {
      paused = 1;
      struct sockaddr_un address = { .sun_family = AF_UNIX };
      strncpy(address.sun_path, where, sizeof address.sun_path - 1);
      int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      char go;
      if (s >= 0 && connect(s, (struct sockaddr *)&address, sizeof address) == 0 && write(s, target, (size_t)n) == n) (void)read(s, &go, 1);
      if (s >= 0) close(s);
    }
  }
  return real(fd, operation);
}
`;

test(
  "Files: the work-dir sweep works on descriptors: a dead node's directory swapped for a symbolic link after it was checked leads it nowhere else",
  T,
  async (t) => {
    if (!needsPostgres(t)) return;
    const build = tmpdir('otr-pause-');
    fs.writeFileSync(path.join(build, 'pause.c'), PAUSE_AT_FLOCK_C);
    const shim = path.join(build, 'pause.so');
    const built = spawnSync(process.env.CC || 'cc', ['-shared', '-fPIC', '-o', shim, path.join(build, 'pause.c'), '-ldl'], { encoding: 'utf8' });
    if (built.error || built.status !== 0) return cannotRun(t, `no C compiler to build the pausing library (${built.error?.message ?? built.stderr})`);

    // A copy a dead node left (its marker not held), and another bridge's directory the sweep
    // must never touch.
    const shared = workDir();
    const name = 'protocol-otr-node-dead01';
    const dead = path.join(shared, name);
    fs.mkdirSync(dead, { mode: 0o700 });
    fs.writeFileSync(path.join(dead, 'otr.private_key'), "the dead node's copy of the key", { mode: 0o600 });
    fs.writeFileSync(path.join(dead, 'owner.lock'), '', { mode: 0o600 });
    const victim = tmpdir('otr-victim-');
    fs.writeFileSync(path.join(victim, 'otr.private_key'), "another bridge's key", { mode: 0o600 });
    fs.writeFileSync(path.join(victim, 'owner.lock'), '', { mode: 0o600 });
    const victimBefore = snapshot(victim);

    let paused;
    const socketPath = path.join(build, 'pause.sock');
    const pauser = net.createServer((socket) => {
      socket.once('data', (where) => {
        paused = String(where);
        fs.renameSync(dead, `${dead}-moved`);
        fs.symlinkSync(victim, dead);
        socket.end('g');
      });
    });
    await new Promise((resolve) => pauser.listen(socketPath, resolve));
    const preload = [process.env.LD_PRELOAD, shim].filter(Boolean).join(':');
    const node = startNode('node-sweeper', { env: { LD_PRELOAD: preload, PAUSE_AT_FLOCK: `/${name}/owner.lock`, PAUSE_SOCKET: socketPath } });
    try {
      await node.ready;
      await node.call('open', { connection: server.connection, prefix: 'descriptors_', node: node.name, accounts: [ACCOUNT], workDir: shared });
      assert.equal(paused, path.join(dead, 'owner.lock'), "the sweep took the dead copy's marker, and the directory was swapped then");
      assert.deepEqual(snapshot(victim), victimBefore, 'the directory the link points to is untouched');
      assert.equal(fs.readlinkSync(dead), victim, 'the link itself was not followed into a removal either');
      assert.deepEqual(fs.readdirSync(`${dead}-moved`), [], "what the sweep checked is what it emptied: the dead node's copy");
    } finally {
      pauser.close();
      await closeNodes([node]);
    }
  },
);

test('1,000 concurrent trust changes from two processes: no row lost or duplicated, both live states complete', T, async (t) => {
  if (!needsPostgres(t)) return;
  const {
    nodes: [a, b],
  } = await openNodes('bulk_');
  try {
    // 100 contacts with 10 fingerprints each; the two nodes verify alternate ones, at once.
    const items = Array.from({ length: 1000 }, (_, i) => ({ contact: `user${i % 100}`, hex: hex(i + 1) }));
    const t0 = Date.now();
    await Promise.all([
      a.call('trustMany', { items: items.filter((_, i) => i % 2 === 0) }),
      b.call('trustMany', { items: items.filter((_, i) => i % 2 === 1) }),
    ]);
    const stored = Date.now() - t0;
    await Promise.all([a.call('waitRemoteChanges', { n: 500 }), b.call('waitRemoteChanges', { n: 500 })]);
    console.log(`# 1,000 trust changes from two nodes: stored in ${stored} ms, both nodes live after ${Date.now() - t0} ms`);
    const rows = await query(
      `SELECT count(*)::int AS n, count(DISTINCT (account, protocol, contact, fingerprint))::int AS distinct, count(*) FILTER (WHERE trust = 'verified')::int AS verified FROM "bulk_fingerprints"`,
    );
    assert.deepEqual(rows[0], { n: 1000, distinct: 1000, verified: 1000 });
    assert.equal(await a.call('verifiedCount'), 1000);
    assert.equal(await b.call('verifiedCount'), 1000);
  } finally {
    await closeNodes([a, b]);
  }
});

test('import and export between a Pidgin-format file set and the database', T, async (t) => {
  if (!needsPostgres(t)) return;
  const dir = tmpdir('otr-import-');
  const files = filesIn(dir);
  const local = new OTR(files);
  const acc = await local.account(ACCOUNT.name, ACCOUNT.protocol);
  await acc.contact('carol', hex(7), true);
  await acc.contact('dave', hex(8));
  await local.close();
  const store = new PostgresStore({ connection: server.connection, prefix: 'import_' });
  assert.deepEqual(await store.importFiles(files), { accounts: 1, accountsKept: 0, fingerprints: 2 });
  assert.deepEqual(await store.importFiles(files), { accounts: 0, accountsKept: 1, fingerprints: 0 });
  const out = tmpdir('otr-export-');
  assert.deepEqual(await store.exportFiles(filesIn(out)), { accounts: 1, fingerprints: 2 });
  // Never over files an OTR instance has open: the export takes their lock.
  const holding = new OTR(files);
  const held = fs.readFileSync(files.privkeysFile);
  await rejectsCode(store.exportFiles(files), 'ERR_OTR_LOCKED');
  assert.deepEqual(fs.readFileSync(files.privkeysFile), held);
  await holding.close();
  await store.end();
  for (const f of ['otr.fingerprints', 'otr.instance_tags']) {
    assert.equal(
      fs.readFileSync(path.join(out, f), 'utf8').split('\n').sort().join('\n'),
      fs
        .readFileSync(path.join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .sort()
        .join('\n'),
      f,
    );
  }
  assert.equal(fs.statSync(path.join(out, 'otr.private_key')).mode & 0o777, 0o600);
  // The exported set opens as the same identity with the same trust.
  const again = new OTR(filesIn(out));
  const account = again.findAccount(ACCOUNT.name, ACCOUNT.protocol);
  assert.equal(account.fingerprint, acc.fingerprint);
  assert.equal(account.instanceTag, acc.instanceTag);
  assert.deepEqual(
    account
      .findContact('carol')
      .fingerprints()
      .map((f) => f.trust),
    ['verified'],
  );
  await again.close();
  // A node over the imported database has that identity too.
  const node = new PostgresStore({ connection: server.connection, prefix: 'import_', accounts: [ACCOUNT], workDir: workDir() });
  const shared = await OTR.open({ store: node });
  assert.equal(shared.findAccount(ACCOUNT.name, ACCOUNT.protocol).fingerprint, acc.fingerprint);
  assert.deepEqual(node.keysGenerated, []);
  await rejectsCode(shared.account('other@example.org', 'prpl-jabber'), 'ERR_OTR_STORE');
  await shared.close();
});

test('the CLI copies a file set into the database (db import) and writes it out again (db export)', T, async (t) => {
  if (!needsPostgres(t)) return;
  const { execFileSync } = await import('node:child_process');
  const dir = tmpdir('otr-cli-db-');
  const local = new OTR(filesIn(dir));
  const acc = await local.account(ACCOUNT.name, ACCOUNT.protocol);
  await acc.contact('erin', hex(9), true);
  await local.close();
  const cli = (...args) =>
    JSON.parse(
      execFileSync(process.execPath, [path.join(REPO, 'dist', 'cli', 'main.js'), ...args, '--db', server.url, '--prefix', 'cli_', '--json'], {
        encoding: 'utf8',
      }),
    ).result;
  assert.deepEqual(cli('db', 'import', '--dir', dir), { accounts: 1, accountsKept: 0, fingerprints: 1 });
  const out = tmpdir('otr-cli-export-');
  assert.deepEqual(cli('db', 'export', '--dir', out), { accounts: 1, fingerprints: 1 });
  const again = new OTR(filesIn(out));
  assert.equal(again.findAccount(ACCOUNT.name, ACCOUNT.protocol).fingerprint, acc.fingerprint);
  assert.deepEqual(
    again
      .findAccount(ACCOUNT.name, ACCOUNT.protocol)
      .findContact('erin')
      .fingerprints()
      .map((f) => f.trust),
    ['verified'],
  );
  await again.close();
});

test('the multi-node example runs: two bridges, one killed, the other takes its contacts over', T, async (t) => {
  if (!needsPostgres(t)) return;
  const { execFile } = await import('node:child_process');
  const output = await new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      [path.join(REPO, 'examples', 'multi-node', 'run.mjs')],
      { env: { ...process.env, DATABASE_URL: server.url }, timeout: 150_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stdout}\n${stderr}`)) : resolve(stdout)),
    ),
  );
  const killed = /kill -9 (node-[ab]) \(owner of ([^)]*)\)/.exec(output);
  assert.ok(killed, output);
  const survivor = killed[1] === 'node-a' ? 'node-b' : 'node-a';
  assert.match(output, new RegExp(`${survivor} renegotiated with \\d+ contacts`));
  for (const user of killed[2].split(', ')) assert.match(output, new RegExp(`${user.replace(/[.@]/g, '\\$&')} got "echo from ${survivor}: back again"`));
});

test(
  'finding 6 of the hostile-contacts issue: contacts kept on failure — 2,000 router.read() calls for contacts this node does not own reject and leave no contact',
  T,
  async (t) => {
    if (!needsPostgres(t)) return;
    const store = new PostgresStore({ connection: server.connection, prefix: 'kept_on_failure', node: 'solo', accounts: [ACCOUNT], workDir: workDir() });
    const otr = await OTR.open({ store });
    try {
      const account = await otr.account(ACCOUNT.name, ACCOUNT.protocol);
      const router = account.router({ onWrite() {}, onRead() {} });
      await store.lease(ACCOUNT.name, ACCOUNT.protocol, 'owned@example.org');
      await router.read('owned@example.org', 'hello');
      const before = account.contacts().length;
      for (let i = 0; i < 2000; i++) await rejectsCode(router.read(`stranger${i}@example.org`, 'hello'), 'ERR_OTR_NOT_OWNER');
      assert.equal(account.contacts().length, before, 'no contact made by a refused read');
      assert.equal(otr.stats().channels, 1);
    } finally {
      await otr.close();
    }
  },
);

// ---- Several machines, wave 2 ----

const tcp = () => server.tcpConnection();
const ensureRole = (role) => query(`DO $$ BEGIN CREATE ROLE ${role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
const humanOf = (h) => h.toUpperCase().match(/.{8}/g).join(' ');

test(
  'finding 2 of the several-machines wave 2 issue: trust from anyone — forged notifications from a role with no rights on the tables change nothing on the nodes, 100,000 of them cost bounded work, and a real change still arrives',
  T,
  async (t) => {
    if (!needsPostgres(t)) return;
    const prefix = 'forged_';
    const {
      nodes: [a, b],
    } = await openNodes(prefix, ['node-a', 'node-b'], { connection: tcp() });
    const { Client } = require('pg');
    const mallory = new Client({ ...tcp(), user: 'mallory' });
    try {
      await ensureRole('mallory');
      await mallory.connect();
      await assert.rejects(mallory.query(`SELECT * FROM "${prefix}fingerprints"`), /permission denied/);
      // carol has one fingerprint, not verified, on both nodes.
      const real = hex(0xa11ce);
      const forgedFp = hex(0xbad);
      const seen = b.next((m) => m.event === 'trust' && m.change.contact === 'carol');
      await a.call('trust', { contact: 'carol', hex: real, verified: false });
      await seen;
      const before = await b.call('contacts');
      assert.deepEqual(before.carol, [{ hash: humanOf(real), trust: '' }]);
      const events = [];
      b.on((m) => m.event === 'trust' && events.push(m.change));
      const statements = await b.call('statements');
      const heap = await b.call('memory');

      const forged = (payload) =>
        mallory.query('SELECT pg_notify($1, $2)', [`${prefix}trust`, typeof payload === 'string' ? payload : JSON.stringify(payload)]);
      const names = { n: 'node-a', a: ACCOUNT.name, p: ACCOUNT.protocol };
      // What a node applied as it came before: a new verified fingerprint, carol's verified, forgotten.
      await forged({ ...names, c: 'carol', f: forgedFp, t: 'verified', d: false });
      await forged({ ...names, c: 'carol', f: real, t: 'verified', d: false });
      await forged({ ...names, c: 'carol', f: real, t: '', d: true });
      await forged({ ...names, c: 'mallory', f: forgedFp, t: 'verified', d: false });
      // Hints: a re-read finds the table as it was; a rename the table does not show is not followed.
      await forged({ ...names, c: 'carol' });
      await forged({ ...names, c: 'carol-now', w: 'carol' });
      // A real change after those reaches node B after them (notifications arrive in commit order).
      const dave = b.next((m) => m.event === 'trust' && m.change.contact === 'dave');
      await a.call('trust', { contact: 'dave', hex: hex(0xd), verified: true });
      await dave;
      assert.deepEqual(
        events.map((e) => [e.contact, e.fingerprint, e.trust, e.node]),
        [['dave', humanOf(hex(0xd)), 'verified', 'node-a']],
        'the real change, and nothing forged',
      );
      assert.deepEqual((await b.call('contacts')).carol, [{ hash: humanOf(real), trust: '' }]);
      events.length = 0;
      // Not JSON, not an object, not names: ignored (a 'null' made every node throw before).
      for (const junk of [
        'not json',
        '[]',
        'null',
        '{"a":1}',
        JSON.stringify({ ...names, c: 'x\u0001y' }),
        JSON.stringify({ ...names, c: 'a'.repeat(300) }),
        JSON.stringify({ ...names, c: 'carol', w: 'carol' }),
      ])
        await forged(junk);
      // A flood of hints for random names, in one transaction.
      await mallory.query(
        `SELECT pg_notify($1, json_build_object('n', 'node-a', 'a', $2::text, 'p', $3::text, 'c', 'stranger' || i || '-' || md5(i::text))::text) FROM generate_series(1, 100000) i`,
        [`${prefix}trust`, ACCOUNT.name, ACCOUNT.protocol],
      );
      const arrived = b.next((m) => m.event === 'trust' && m.change.contact === 'carol' && m.change.verified);
      await a.call('trust', { contact: 'carol', hex: real, verified: true });
      assert.equal((await arrived).change.node, 'node-a');
      assert.deepEqual(
        events.map((e) => [e.contact, e.fingerprint, e.trust, e.node]),
        [['carol', humanOf(real), 'verified', 'node-a']],
        'the real change, and nothing forged',
      );
      const after = await b.call('contacts');
      assert.deepEqual(after.carol, [{ hash: humanOf(real), trust: 'verified' }]);
      assert.deepEqual(Object.keys(after).sort(), [...Object.keys(before), 'dave'].sort(), 'no contact made by a forged notification');
      const heapGrowth = (await b.call('memory')) - heap;
      const { statements: closing } = await b.call('close');
      const spent = closing - statements;
      console.log(`# 100,000 forged hints: node B sent ${spent} statements for them and the real change; its heap grew ${(heapGrowth / 1e6).toFixed(1)} MB`);
      assert.ok(spent <= 1000, `at most one statement per 100 hints: ${spent}`);
      assert.ok(heapGrowth < 16e6, `nothing kept: the heap grew ${heapGrowth} bytes`);
      const rows = await query(`SELECT contact, fingerprint, trust, changed_by FROM "${prefix}fingerprints" ORDER BY contact`);
      assert.deepEqual(rows, [
        { contact: 'carol', fingerprint: real, trust: 'verified', changed_by: 'node-a' },
        { contact: 'dave', fingerprint: hex(0xd), trust: 'verified', changed_by: 'node-a' },
      ]);
    } finally {
      await mallory.end().catch(() => {});
      await closeNodes([a, b]);
    }
  },
);

test(
  "finding 2 of the several-machines wave 2 issue: the deployment recipe — the store's role owns its own database, REVOKE CONNECT … FROM PUBLIC keeps every other role out, and NOTIFY and advisory locks from another database do not reach it",
  T,
  async (t) => {
    if (!needsPostgres(t)) return;
    await ensureRole('mallory');
    await ensureRole('otr_store');
    await query('CREATE DATABASE otr_store OWNER otr_store');
    const as = (user, database) => ({ ...tcp(), user, database });
    const { Client } = require('pg');
    const {
      nodes: [a, b],
    } = await openNodes('otr_', ['node-a', 'node-b'], { connection: as('otr_store', 'otr_store') });
    const inside = new Client(as('mallory', 'otr_store'));
    const elsewhere = new Client(as('mallory', 'postgres'));
    try {
      // The key of carol's lease, as the server shows it.
      await a.call('lease', { contact: 'carol' });
      const [{ key }] = await query(
        `SELECT ((l.classid::bigint << 32) | l.objid::bigint)::text AS key FROM pg_locks l JOIN pg_database d ON d.oid = l.database
       WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND d.datname = 'otr_store'`,
      );
      await a.call('release', { contact: 'carol' });
      // Before the REVOKE, any role connects to the store's database: no rights on the tables,
      // but the advisory lock of a lease and NOTIFY on the channel are open to it.
      await inside.connect();
      await assert.rejects(inside.query('SELECT * FROM "otr_fingerprints"'), /permission denied/);
      assert.equal((await inside.query('SELECT pg_try_advisory_lock($1::bigint) AS ok', [key])).rows[0].ok, true);
      await assert.rejects(a.call('lease', { contact: 'carol' }), (e) => e.code === 'ERR_OTR_CONTACT_OWNED');
      await inside.query('SELECT pg_advisory_unlock_all()');
      await query('REVOKE CONNECT ON DATABASE otr_store FROM PUBLIC', [], as('otr_store', 'otr_store'));
      await assert.rejects(query('SELECT 1', [], as('mallory', 'otr_store')), /permission denied for database "otr_store"/);
      // A session opened before the REVOKE stays (the privilege is checked at connection time).
      assert.equal((await inside.query('SELECT 1 AS one')).rows[0].one, 1);
      await inside.end();
      // From another database of the same server, the same lock key is another lock.
      await elsewhere.connect();
      assert.equal((await elsewhere.query('SELECT pg_try_advisory_lock($1::bigint) AS ok', [key])).rows[0].ok, true);
      assert.equal((await a.call('lease', { contact: 'carol' })).node, 'node-a');
      // And NOTIFY on the store's channel there reaches no listener of the store's database (the
      // store's own notification after it does).
      const listener = new Client(as('otr_store', 'otr_store'));
      await listener.connect();
      const heard = [];
      const own = new Promise((resolve) => listener.on('notification', (m) => (heard.push(m.payload), m.payload === 'own' && resolve())));
      await listener.query('LISTEN otr_trust');
      await elsewhere.query("SELECT pg_notify('otr_trust', 'from another database')");
      await query("SELECT pg_notify('otr_trust', 'own')", [], as('otr_store', 'otr_store'));
      await own;
      await listener.end();
      assert.deepEqual(heard, ['own']);
      // The store works as its own role: trust travels between the nodes.
      const arrived = b.next((m) => m.event === 'trust' && m.change.contact === 'erin');
      await a.call('trust', { contact: 'erin', hex: hex(0xe), verified: true });
      assert.equal((await arrived).change.node, 'node-a');
    } finally {
      await inside.end().catch(() => {});
      await elsewhere.end().catch(() => {});
      await closeNodes([a, b]);
    }
  },
);

const fingerprintRows = (prefix) => query(`SELECT contact, fingerprint, trust, changed_by FROM "${prefix}fingerprints" ORDER BY contact, fingerprint`);

test(
  'finding 4 of the several-machines wave 2 issue: renames do not travel — a rename on node A is seen on node B (its fingerprints under the new name, none under the old), and the lease moves with the name',
  T,
  async (t) => {
    if (!needsPostgres(t)) return;
    const prefix = 'rename_';
    const {
      nodes: [a, b],
    } = await openNodes(prefix, ['node-a', 'node-b'], { connection: tcp() });
    try {
      const [verified, seen] = [hex(0xc1), hex(0xc2)];
      await a.call('lease', { contact: 'carol' });
      await a.call('channel', { contact: 'carol' });
      const both = b.next((m) => m.event === 'trust' && m.change.fingerprint === humanOf(seen));
      await a.call('trust', { contact: 'carol', hex: verified, verified: true });
      await a.call('trust', { contact: 'carol', hex: seen, verified: false });
      await both;
      const carol = [
        { hash: humanOf(verified), trust: 'verified' },
        { hash: humanOf(seen), trust: '' },
      ];
      assert.deepEqual((await b.call('contacts')).carol, carol);

      const events = [];
      b.on((m) => m.event === 'trust' && events.push(m.change.contact));
      await a.call('rename', { from: 'carol', to: 'carol_' });
      // A change A makes after the rename reaches B after it: B has followed the rename by then.
      const later = b.next((m) => m.event === 'trust' && m.change.contact === 'dave');
      await a.call('trust', { contact: 'dave', hex: hex(0xd), verified: true });
      await later;
      assert.deepEqual(events, ['dave'], 'B renamed its contact: no fingerprint was forgotten or added on the way');
      const onB = await b.call('contacts');
      assert.deepEqual(onB.carol_, carol, "B shows carol's fingerprints under the new name");
      assert.equal(onB.carol, undefined, 'and none under the old');
      assert.deepEqual(
        (await fingerprintRows(prefix)).filter((r) => r.contact.startsWith('carol')).map((r) => [r.contact, r.fingerprint, r.trust]),
        [
          ['carol_', verified, 'verified'],
          ['carol_', seen, ''],
        ],
      );
      // The lease moved with the name: A owns carol_ (and its channel), carol came free.
      assert.deepEqual(await a.call('leases'), ['carol_']);
      assert.equal(await a.call('hasChannel', { contact: 'carol_' }), true);
      await assert.rejects(b.call('lease', { contact: 'carol_' }), ownedBy('node-a'));
      assert.equal((await b.call('lease', { contact: 'carol' })).node, 'node-b');
    } finally {
      await closeNodes([a, b]);
    }
  },
);

test(
  'finding 4 of the several-machines wave 2 issue: a rename onto a name another node owns is refused with ERR_OTR_CONTACT_OWNED and changes nothing: rows, leases, the contact',
  T,
  async (t) => {
    if (!needsPostgres(t)) return;
    const prefix = 'rename_owned_';
    const {
      nodes: [a, b],
    } = await openNodes(prefix, ['node-a', 'node-b'], { connection: tcp() });
    try {
      await a.call('lease', { contact: 'carol' });
      await a.call('channel', { contact: 'carol' });
      await a.call('trust', { contact: 'carol', hex: hex(0xc1), verified: true });
      await b.call('lease', { contact: 'dave' });
      const rows = await fingerprintRows(prefix);
      const contacts = await a.call('contacts');
      for (const via of ['router', 'contact']) {
        await assert.rejects(a.call('rename', { from: 'carol', to: 'dave', via }), ownedBy('node-b'));
      }
      assert.deepEqual(await fingerprintRows(prefix), rows);
      assert.deepEqual(await a.call('contacts'), contacts);
      assert.equal(await a.call('hasChannel', { contact: 'carol' }), true);
      assert.deepEqual(await a.call('leases'), ['carol']);
      await assert.rejects(a.call('lease', { contact: 'dave' }), ownedBy('node-b'));
      await assert.rejects(b.call('lease', { contact: 'carol' }), ownedBy('node-a'));
      // The old name owned elsewhere: the same.
      await a.call('trust', { contact: 'erin', hex: hex(0xe), verified: false });
      await b.call('lease', { contact: 'erin' });
      await assert.rejects(a.call('rename', { from: 'erin', to: 'erin_', via: 'contact' }), ownedBy('node-b'));
      assert.deepEqual(await a.call('leases'), ['carol']);
      assert.equal((await b.call('lease', { contact: 'erin_' })).node, 'node-b');
    } finally {
      await closeNodes([a, b]);
    }
  },
);

test(
  'finding 4 of the several-machines wave 2 issue: a rename the engine refuses (ERR_OTR_CONTACT_EXISTS) moves no rows and keeps no lease it took',
  T,
  async (t) => {
    if (!needsPostgres(t)) return;
    const prefix = 'rename_refused_';
    const {
      nodes: [a, b],
    } = await openNodes(prefix, ['node-a', 'node-b'], { connection: tcp() });
    try {
      await a.call('lease', { contact: 'carol' });
      await a.call('channel', { contact: 'carol' });
      await a.call('trust', { contact: 'carol', hex: hex(0xc1), verified: true });
      await a.call('trust', { contact: 'erin', hex: hex(0xe), verified: true });
      const rows = await fingerprintRows(prefix);
      await assert.rejects(a.call('rename', { from: 'carol', to: 'erin' }), (e) => e.code === 'ERR_OTR_CONTACT_EXISTS');
      assert.deepEqual(await fingerprintRows(prefix), rows);
      assert.deepEqual(await a.call('leases'), ['carol']);
      assert.equal((await b.call('lease', { contact: 'erin' })).node, 'node-b');
    } finally {
      await closeNodes([a, b]);
    }
  },
);

test(
  'several machines wave 2: 4 nodes × 1,000 contacts split by a consistent hash, one killed with -9 — each of its contacts owned again by exactly one live node; 0 SQL statements per data message',
  T,
  async (t) => {
    if (!needsPostgres(t)) return;
    const names = ['node-a', 'node-b', 'node-c', 'node-d'];
    const contacts = Array.from({ length: 1000 }, (_, i) => `user${i}@example.net`);
    const { nodes } = await openNodes('ring_', names, { connection: tcp() });
    const node = Object.fromEntries(nodes.map((n) => [n.name, n]));
    const live = names.filter((n) => n !== 'node-c');
    try {
      const first = hashRing(names);
      await Promise.all(nodes.map((n) => n.call('leaseMany', { contacts: contacts.filter((c) => first(c) === n.name) })));
      const moved = contacts.filter((c) => first(c) === 'node-c');
      node['node-c'].child.kill('SIGKILL');
      const killed = Date.now();
      assert.equal((await node['node-c'].exited).signal, 'SIGKILL');
      // The ring without the dead node: only its contacts move.
      const next = hashRing(live);
      await Promise.all(live.map((n) => node[n].call('leaseMany', { contacts: moved.filter((c) => next(c) === n), waitMs: 10_000 })));
      console.log(`# 4 nodes × 1,000 contacts: node-c's ${moved.length} contacts owned again by the 3 others ${Date.now() - killed} ms after kill -9`);

      const owners = new Map();
      for (const n of live) for (const c of await node[n].call('leases')) owners.set(c, [...(owners.get(c) ?? []), n]);
      assert.equal(owners.size, contacts.length, 'every contact is owned');
      for (const c of contacts) assert.deepEqual(owners.get(c), [next(c)], `${c}: one live owner, the ring's`);
      for (const c of contacts.filter((c) => !moved.includes(c))) assert.equal(next(c), first(c), "the others' contacts stayed");
      // The database says the same of every moved contact.
      for (const c of moved) assert.equal(await node['node-a'].call('owner', { contact: c }), next(c));

      // Data messages: secure sessions on each live node with a contact it had and one it took over.
      const talks = Object.fromEntries(live.map((n) => [n, [contacts.find((c) => first(c) === n), moved.find((c) => next(c) === n)].filter(Boolean)]));
      const results = await talkOnNodes(node, talks, 100, () => tmpdir('otr-ring-users-'));
      const messages = results.reduce((sum, r) => sum + r.messages, 0);
      const statements = results.reduce((sum, r) => sum + r.statements, 0);
      console.log(`# ${messages} data messages on 3 nodes: ${statements} SQL statements`);
      assert.equal(statements, 0);
    } finally {
      await closeNodes(live.map((n) => node[n]));
    }
  },
);
