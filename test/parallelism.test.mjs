// Contacts in parallel: one account's contacts run on the process-wide threads at once, each
// contact's calls stay in the order they were made, calls that concern the whole instance
// stay ordered with respect to every call before and after them, otr.stats(), and the
// threads are shared by every instance of the process.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { Policy, SmpEvent, setThreads } from 'protocol-otr';
import {
  ALICE,
  BOB,
  PROTO,
  T,
  Net,
  cloneDir,
  closeAll,
  filesIn,
  keys,
  makeSecure,
  openOTR,
  openCopies,
  tmpdir,
  turnsUntil,
  writeKeyFile,
} from './helpers/harness.mjs';

after(closeAll);

// A bridge (one OTR, one account) with `n` contacts, and a peers OTR whose account talks to it
// under `n` names: channel i of the bridge is wired to channel i of the peers.
async function bridge(n, options = {}) {
  const k = await keys();
  const net = new Net();
  const bridgeOtr = openOTR(cloneDir(k.aliceDir));
  const peersOtr = openOTR(cloneDir(k.bobDir));
  const links = [];
  for (let i = 0; i < n; i++) {
    const b = await net.addParty(`bridge>${i}`, { otr: bridgeOtr, account: ALICE, contact: `peer${i}@example.org`, ...options });
    const p = await net.addParty(`peer${i}>bridge`, { otr: peersOtr, account: BOB, contact: `bridge${i}@example.org`, ...options });
    b.peers = [p];
    p.peers = [b];
    links.push({ b, p });
  }
  return { net, bridgeOtr, peersOtr, links };
}

function shuffled(list) {
  const copy = [...list];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

test('thousands of interleaved calls over many contacts: each contact receives its messages, and settles its calls, in call order', T, async () => {
  setThreads(4); // more threads than cores: contacts really overlap
  const N = 24;
  const ROUNDS = 100;
  const { net, links } = await bridge(N);
  await Promise.all(links.map(({ b }) => b.channel.init()));
  await net.settle();
  for (const { b, p } of links) {
    assert.equal(b.channel.status, 'Unverified');
    assert.equal(p.channel.status, 'Unverified');
  }
  const settled = links.map(() => []); // per contact: the order its write() promises resolved in
  const calls = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const i of shuffled([...links.keys()])) {
      const { b, p } = links[i];
      calls.push(b.channel.write(`${i}:${r}`).then(() => settled[i].push(r)));
      // Some contacts re-key mid-way (an AKE on the same strand as the writes around it:
      // those writes wait for it, other contacts' do not); the others' peers answer every few
      // rounds (a reply reaching a contact while it re-keys would be refused as not private).
      if (r === ROUNDS / 2 && i % 4 === 0) calls.push(b.channel.refresh());
      if (i % 4 !== 0 && r % 7 === i % 7) calls.push(p.channel.write(`reply ${i}:${r}`));
    }
  }
  await Promise.all(calls);
  await net.settle();
  net.assertNoErrors();
  const rounds = [...Array(ROUNDS).keys()];
  for (const [i, { b, p }] of links.entries()) {
    assert.deepEqual(settled[i], rounds, `contact ${i}: write() promises settled in call order`);
    assert.deepEqual(
      p.received,
      rounds.map((r) => `${i}:${r}`),
      `contact ${i}: the peer read every message, in order`,
    );
    const replies = i % 4 === 0 ? [] : rounds.filter((r) => r % 7 === i % 7).map((r) => `reply ${i}:${r}`);
    assert.deepEqual(b.received, replies, `contact ${i}: the bridge read the replies in order`);
    assert.equal(b.channel.status, 'Unverified', `contact ${i} still private`);
  }
});

test("a contact's cheap call runs while another contact's public-key step holds the only pool thread", T, async () => {
  setThreads(1); // one pool thread, plus the express thread
  try {
    const k = await keys();
    const net = new Net();
    const bridgeOtr = openOTR(cloneDir(k.aliceDir));
    const peersOtr = openOTR(cloneDir(k.bobDir));
    // Only the SMP answer asks JS: every other value-returning callback is left out, since JS
    // is busy answering while the cheap call runs.
    const omit = ['onBeforeEncrypt', 'onAfterDecrypt', 'onIsContactLoggedIn', 'onError', 'onSmp'];
    let ranWhileHeld = false;
    let polls = 0;
    const held = {
      onSmp() {
        // A's SMP step (the first data message A's channel reads: expected to do public-key
        // work, so it runs on the pool thread) waits for this answer. B's write must run now.
        const before = bridgeOtr.stats().jobs;
        cheap.channel.write('while A waits').catch(() => {});
        // Bounded so that a regression fails instead of hanging the event loop for good.
        while (!ranWhileHeld && polls < 1e6) {
          polls++;
          ranWhileHeld = bridgeOtr.stats().jobs > before;
        }
        return 'the answer';
      },
    };
    const link = async (i, handlers) => {
      const b = await net.addParty(`bridge>${i}`, {
        otr: bridgeOtr,
        account: ALICE,
        contact: `peer${i}@example.org`,
        handlers,
        omit: handlers ? omit.filter((n) => !(n in handlers)) : omit,
      });
      const p = await net.addParty(`peer${i}>bridge`, { otr: peersOtr, account: BOB, contact: `bridge${i}@example.org`, omit });
      b.peers = [p];
      p.peers = [b];
      return { b, p };
    };
    const slow = await link(0, held);
    const cheap = (await link(1)).b;
    await makeSecure(net, slow.b, slow.p);
    await makeSecure(net, cheap, cheap.peers[0]);
    await slow.p.channel.smpVerify('the answer', 'what is it?');
    await net.settle();
    assert.ok(ranWhileHeld, `B's write ran while A's SMP step held the pool thread (stats() polled ${polls} times)`);
    assert.deepEqual(cheap.peers[0].received, ['while A waits']);
    assert.deepEqual(slow.b.smpEvents().at(-1), [SmpEvent.SUCCESS, 100]);
    net.assertNoErrors();
  } finally {
    setThreads(os.availableParallelism());
  }
});

test(
  "SMP steps are expected to do public-key work, so the express thread never runs one: the peer's first told by its length, the next ones by the SMP under way",
  T,
  async () => {
    setThreads(1); // one pool thread, plus the express thread
    try {
      const answer = { onSmp: () => 'the answer' };
      const { net, bridgeOtr, links } = await bridge(1, { handlers: answer });
      const [{ b, p }] = links;
      await makeSecure(net, b, p);
      // The bridge's data-message reads become cheap: short messages one way (new keys only at
      // first), so only what a read carries can make it expensive.
      const shortMessagesOneWay = async () => {
        for (let i = 0; i < 4; i++) await p.channel.write(`short ${i}`);
        await net.settle();
      };
      const tasks = () => bridgeOtr.stats().threads.map((t) => t.tasks); // the pool thread, then express
      const total = (counts) => counts.reduce((sum, n) => sum + n, 0);
      // The bridge reads one message while nothing else runs in the process (what it writes is
      // recorded, not sent); returns how many tasks the pool thread and the express thread ran
      // meanwhile. A thread counts a task once it has returned, which can be just after its
      // result reached JS: the pool thread's count may still take in the task before (the
      // peer's smpVerify() or SMP step, work only pool threads run), the express thread's cannot.
      async function readAlone(message) {
        b.deliver = false;
        const before = tasks();
        await b.read(message);
        await turnsUntil(() => total(tasks()) > total(before));
        b.deliver = true;
        const [pool, express] = tasks().map((n, i) => n - before[i]);
        return { pool: pool > 0, express };
      }
      await shortMessagesOneWay();
      // The peer starts an SMP: its first step comes unannounced, in a data message far longer
      // than the contact's last.
      b.pause();
      await p.channel.smpVerify('the answer', 'what is it?');
      await net.settle();
      const [smp1] = b.take();
      assert.ok(smp1.startsWith('?OTR:AAMD'), 'the SMP step travels in a data message');
      assert.deepEqual(await readAlone(smp1), { pool: true, express: 0 }, "the bridge's read of the peer's first SMP step ran on the pool thread");
      await p.read(b.wire.at(-1)); // the bridge's answer: the peer's next step comes back
      await net.settle();
      b.resume();
      await net.settle();
      assert.deepEqual(b.smpEvents().at(-1), [SmpEvent.SUCCESS, 100], 'the SMP the peer started succeeded');
      // The bridge starts one: the peer's reply is an SMP step the bridge expects.
      await shortMessagesOneWay();
      b.pause();
      await b.channel.smpVerify('the answer', 'what is it?');
      await net.settle();
      const [smp2] = b.take();
      assert.deepEqual(await readAlone(smp2), { pool: true, express: 0 }, "the bridge's read of the answer to its SMP ran on the pool thread");
      await p.read(b.wire.at(-1));
      await net.settle();
      b.resume();
      await net.settle();
      assert.deepEqual(b.smpEvents().at(-1), [SmpEvent.SUCCESS, 100], 'the SMP the bridge started succeeded');
      assert.equal(b.channel.status, 'Private', 'the contact is verified');
      net.assertNoErrors();
    } finally {
      setThreads(os.availableParallelism());
    }
  },
);

test('calls that concern the whole instance are ordered with every call before and after them', T, async () => {
  const { bridgeOtr } = await bridge(0);
  const account = await bridgeOtr.account(ALICE, PROTO);
  const N = 12;
  const hex = (i) => (i + 1).toString(16).padStart(40, '0');
  const channels = [];
  const seenVerified = new Map(); // message → was the contact's fingerprint verified in its onWrite
  for (let i = 0; i < N; i++) {
    const contact = await account.contact(`plain${i}@example.org`, hex(i));
    channels.push(
      contact.channel({
        policy: Policy.NEVER,
        onWrite: (ch, message) => seenVerified.set(message, ch.contact.fingerprints()[0].isVerified),
        onRead() {},
      }),
    );
  }
  const order = [];
  const calls = [];
  const steps = 30;
  const want = new Array(N).fill(false); // the trust each contact will have, as calls are made
  for (let s = 0; s < steps; s++) {
    for (const [i, ch] of channels.entries()) calls.push(ch.write(`${s}/${i}`).then(() => order.push(`w ${s}/${i}`)));
    // Every third step, one contact's trust is toggled: an instance-wide call between writes.
    if (s % 3 === 1) {
      const fp = channels[s % N].contact.fingerprints()[0];
      want[s % N] = !want[s % N];
      calls.push(fp.setVerified(want[s % N]).then(() => order.push(`t ${s}`)));
    }
  }
  await Promise.all(calls);
  // Every write made before an instance-wide call settled before it.
  for (let s = 1; s < steps; s += 3) {
    const at = order.indexOf(`t ${s}`);
    for (let i = 0; i < N; i++) assert.ok(order.indexOf(`w ${s}/${i}`) < at, `write ${s}/${i} settled before trust call ${s}`);
  }
  // Every write ran after the instance-wide calls made before it, and before those made
  // after it: what its onWrite saw of the trust is exactly what the calls before it left.
  const verified = new Array(N).fill(false);
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < N; i++) assert.equal(seenVerified.get(`${s}/${i}`), verified[i], `onWrite of ${s}/${i}`);
    if (s % 3 === 1) verified[s % N] = !verified[s % N];
  }
});

test('otr.stats(): threads, queues, contacts, channels, sessions and deliveries', T, async () => {
  setThreads(2);
  const { net, bridgeOtr, links } = await bridge(6);
  const before = bridgeOtr.stats();
  assert.equal(before.threads.length, 3, 'one entry per pool thread, and the express thread');
  assert.equal(before.channels, 6);
  assert.equal(before.sessions, 0);
  await Promise.all(links.map(({ b }) => b.channel.init()));
  await net.settle();
  await Promise.all(links.map(({ b }) => b.channel.write('hello')));
  await net.settle();
  const s = bridgeOtr.stats();
  assert.equal(s.contacts, 6, 'contacts libotr keeps');
  assert.equal(s.channels, 6);
  assert.equal(s.sessions, 6, 'every channel is encrypted');
  assert.equal(s.queued, 0);
  assert.equal(s.running, 0);
  assert.equal(s.pending, 0);
  assert.ok(s.jobs >= before.jobs + 12, `jobs finished: ${before.jobs} → ${s.jobs}`);
  assert.ok(s.deliveries > before.deliveries && s.callbacks > before.callbacks, 'deliveries and callbacks counted');
  assert.ok(s.userStates >= 2 && s.userStates <= 1 + 3, `the home state plus at most one per thread: ${s.userStates}`);
  // Each thread's counters only grow, and together: one that ran tasks since `before` spent
  // time running them, one that ran none spent none.
  s.threads.forEach((t, i) => {
    const was = before.threads[i];
    const what = `thread ${i}: ${was.tasks} → ${t.tasks} tasks, ${was.busyMs} → ${t.busyMs} ms`;
    assert.ok(t.tasks >= was.tasks && t.busyMs >= was.busyMs, what);
    assert.equal(t.busyMs > was.busyMs, t.tasks > was.tasks, what);
  });
  const tasks = (stats) => stats.threads.reduce((sum, t) => sum + t.tasks, 0);
  assert.ok(tasks(s) > tasks(before), 'the pool ran the AKEs and writes');
  await links[0].b.channel.finish();
  await net.settle();
  assert.equal(bridgeOtr.stats().sessions, 5, 'a finished session is no longer counted');
});

test('threads are shared: opening many OTR instances starts no thread per instance', T, async () => {
  setThreads(2);
  const dir = tmpdir();
  await writeKeyFile(dir, [ALICE]);
  const threads = () => Number(/Threads:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
  const [warm] = await openCopies(dir, 1, 'warm-');
  await (await warm.account(ALICE, PROTO)).contact(BOB);
  const base = threads();
  const many = await openCopies(dir, 20, 'many-');
  for (const otr of many) {
    const channel = (await (await otr.account(ALICE, PROTO)).contact(BOB)).channel({ onWrite() {}, onRead() {} });
    await channel.init();
  }
  assert.equal(threads(), base, `threads with 21 live instances: ${threads()}, with 1: ${base}`);
  // Resizing within the size reached starts no thread (a smaller size parks threads), and
  // there is one courier whatever the calls (a second would race the first when an instance
  // shuts down).
  const named = (name) => fs.readdirSync('/proc/self/task').filter((tid) => fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === name).length;
  const poolThreads = named('protocol-otr');
  for (const n of [1, 2, 1, 2]) setThreads(n);
  assert.equal(named('protocol-otr'), poolThreads, 'no thread started by resizing within the size reached');
  assert.equal(named('protocol-otr-dl'), 1, 'one courier');
});

test('setThreads and the threads option are checked', T, async () => {
  for (const bad of [0, -1, 1.5, 2000, '2', null]) {
    assert.throws(
      () => setThreads(bad),
      (e) => e.code === 'ERR_OTR_INVALID_ARGUMENT',
      String(bad),
    );
  }
  assert.throws(
    () => openOTR({ ...filesIn(tmpdir()), threads: 0 }),
    (e) => e.code === 'ERR_OTR_INVALID_ARGUMENT',
  );
});
