// Concurrency: ordering of un-awaited calls, parallel OTR instances, close() with work in
// flight, and an event loop that keeps turning while libotr works.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Policy } from 'protocol-otr';
import { ALICE, BOB, PROTO, T, closeAll, cloneDir, createPair, keys, securePair, openOTR, tmpdir, rejectsCode, turnsUntil } from './helpers/harness.mjs';

after(closeAll);

test('1,000 writes issued without awaiting arrive in order', T, async () => {
  const pair = await securePair();
  const texts = Array.from({ length: 1000 }, (_, i) => `message #${i} ✓`);
  const writes = texts.map((t) => pair.alice.channel.write(t));
  await Promise.all(writes);
  await pair.settle();
  assert.equal(pair.bob.received.length, 1000);
  assert.deepEqual(pair.bob.received, texts);
  pair.assertNoErrors();
});

test('onWrite order equals the order write() was called in', T, async () => {
  const pair = await createPair({ alice: { policy: Policy.NEVER }, bob: { policy: Policy.NEVER } });
  const texts = Array.from({ length: 200 }, (_, i) => `p${i}`);
  await Promise.all(texts.map((t) => pair.alice.channel.write(t)));
  assert.deepEqual(pair.alice.wire, texts);
});

test('both sides writing at once (with D-H key rotation) deliver everything in order', T, async () => {
  const pair = await securePair();
  const a = Array.from({ length: 150 }, (_, i) => `a${i}`);
  const b = Array.from({ length: 150 }, (_, i) => `b${i}`);
  const all = [];
  for (let i = 0; i < 150; i++) {
    all.push(pair.alice.channel.write(a[i]));
    all.push(pair.bob.channel.write(b[i]));
    if (i % 10 === 0) await pair.settle(); // let replies interleave and keys rotate
  }
  await Promise.all(all);
  await pair.settle();
  assert.deepEqual(pair.bob.received, a);
  assert.deepEqual(pair.alice.received, b);
  pair.assertNoErrors();
});

test('two OTR instance pairs work in parallel', T, async () => {
  const run = async (tag) => {
    const pair = await createPair({ alice: { handlers: { onSmp: () => tag } }, bob: { handlers: { onSmp: () => tag } } });
    await pair.alice.channel.init();
    await pair.settle();
    const texts = Array.from({ length: 100 }, (_, i) => `${tag}-${i}`);
    await Promise.all(texts.map((t) => pair.alice.channel.write(t)));
    await pair.bob.channel.smpVerify(tag);
    await pair.settle();
    return { pair, texts };
  };
  const results = await Promise.all([run('left'), run('right')]);
  for (const { pair, texts } of results) {
    assert.deepEqual(pair.bob.received, texts);
    assert.equal(pair.alice.channel.status, 'Private');
    assert.equal(pair.bob.channel.status, 'Private');
    pair.assertNoErrors();
  }
});

test('close() with writes in flight resolves; pending calls settle cleanly; later calls reject ERR_OTR_CLOSED', T, async () => {
  const pair = await securePair();
  const writes = Array.from({ length: 200 }, (_, i) => pair.alice.channel.write(`inflight ${i}`));
  const closing = pair.alice.otr.close();
  const results = await Promise.allSettled(writes);
  await closing;
  // close() finishes pending work: calls made before it complete
  for (const r of results) assert.equal(r.status, 'fulfilled', `a write made before close(): ${r.reason?.code} ${r.reason?.message}`);
  const callsAtClose = pair.alice.calls.length;
  await rejectsCode(() => pair.alice.channel.write('after'), 'ERR_OTR_CLOSED', 'write after close');
  await pair.settle(); // bob's replies, if any, to a closed alice are rejected reads, not crashes
  for (const e of pair.errors) assert.equal(e.error.code, 'ERR_OTR_CLOSED', `${e.party}: ${e.error.message}`);
  assert.equal(pair.alice.calls.length, callsAtClose, 'no callback after close() resolved');
  assert.equal(pair.bob.received.length, 200);
});

test('close() while an AKE is in flight resolves cleanly', T, async () => {
  const pair = await createPair();
  await pair.alice.channel.init();
  const closing = Promise.all([pair.alice.otr.close(), pair.bob.otr.close()]);
  await closing;
  await pair.settle();
  for (const e of pair.errors) assert.equal(e.error.code, 'ERR_OTR_CLOSED');
});

// CPU time (clock ticks) used so far by protocol-otr's threads (the pool's threads and key
// generation threads name themselves "protocol-otr…").
function otherThreadsCpu() {
  let ticks = 0;
  for (const tid of fs.readdirSync('/proc/self/task')) {
    let stat;
    try {
      stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    if (!stat.includes('(protocol-otr')) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
  }
  return ticks;
}

// Turns the event loop (setImmediate) until `work` settles; returns how many turns saw
// protocol-otr's threads' CPU time grow since the turn before. Work done on the JS thread could not
// grow between two turns; work on protocol-otr's threads grows while the loop keeps turning.
async function turnsWhileThreadsCompute(work) {
  let done = false;
  let growing = 0;
  let last = otherThreadsCpu();
  const settled = work.finally(() => (done = true));
  await new Promise((resolve) => {
    const spin = () => {
      if (done) return resolve();
      const now = otherThreadsCpu();
      if (now > last) growing++;
      last = now;
      setImmediate(spin);
    };
    setImmediate(spin);
  });
  await settled;
  return growing;
}

test('the event loop keeps turning while account() generates keys on threads of their own', T, async () => {
  const otr = openOTR(tmpdir());
  // Three keys, each on a key generation thread: tens of milliseconds of CPU at least.
  const gen = Promise.all(['slow1', 'slow2', 'slow3'].map((n) => otr.account(`${n}@example.org`, PROTO)));
  const growing = await turnsWhileThreadsCompute(gen);
  const accounts = await gen;
  assert.ok(accounts.every((a) => a.fingerprint));
  assert.ok(growing >= 1, `event-loop turns during which the key generation threads' CPU time grew: ${growing}`);
});

test('the event loop keeps turning during an SMP (libotr work is off the JS thread)', T, async () => {
  const pair = await securePair({ bob: { handlers: { onSmp: () => 'x' } } });
  // bob's read of alice's SMP step 1 computes his step 2 (tens of ms of libotr work)
  pair.bob.pause();
  await pair.alice.channel.smpVerify('x');
  const [step1] = pair.bob.take();
  pair.bob.resume();
  const growing = await turnsWhileThreadsCompute(pair.bob.channel.read(step1));
  assert.ok(growing >= 1, `event-loop turns during which the pool threads' CPU time grew: ${growing}`);
  await pair.settle();
  assert.equal(pair.alice.channel.status, 'Private');
});

test('calls on one OTR keep their order per contact when they interleave over channels of different contacts', T, async () => {
  const otr = openOTR(tmpdir());
  await otr.account(ALICE, PROTO);
  const acct = otr.findAccount(ALICE, PROTO);
  const order = [];
  const chans = [];
  for (const name of ['x@example.org', 'y@example.org', 'z@example.org']) {
    const c = await acct.contact(name);
    chans.push(c.channel({ policy: Policy.NEVER, onWrite: (ch, m) => order.push(`${ch.contact.name}:${m}`), onRead() {} }));
  }
  const expected = [];
  const ps = [];
  for (let i = 0; i < 30; i++) {
    const ch = chans[i % 3];
    ps.push(ch.write(`m${i}`));
    expected.push(`${ch.contact.name}:m${i}`);
  }
  await Promise.all(ps);
  // Contacts run in parallel: the order holds per contact (test/parallelism.test.mjs has more).
  for (const name of ['x@example.org', 'y@example.org', 'z@example.org']) {
    const own = (entry) => entry.startsWith(`${name}:`);
    assert.deepEqual(order.filter(own), expected.filter(own), name);
  }
});

// A callback that keeps the JS thread busy for `ms` (the results meanwhile pile up in the addon).
function keepBusy(ms) {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test(
  'results arriving faster than callbacks run are applied in slices: the event loop turns in between, order holds, a question asked meanwhile is answered at once',
  T,
  async () => {
    const k = await keys();
    const alice = openOTR(cloneDir(k.aliceDir));
    const bob = openOTR(cloneDir(k.bobDir));
    const aliceAccount = await alice.account(ALICE, PROTO);
    const bobAccount = await bob.account(BOB, PROTO);
    // Turns of the event loop, counted by a setImmediate chain: what each callback of bob's
    // ran in says which results one turn applied.
    let turn = 0;
    let spinning = true;
    const spin = () => {
      if (!spinning) return;
      turn++;
      setImmediate(spin);
    };
    // Two conversations between the same two instances: on bob's side one reads slowly, the
    // other asks a question (onAfterDecrypt) for every message it decrypts.
    const received = { slow: [], asking: [] };
    const slowTurns = []; // the turn each slow result was applied in
    const questionTurns = new Set(); // turns in which bob answered a question
    const pairs = {};
    let secure = 0;
    let onSecure;
    for (const name of ['slow', 'asking']) {
      const pair = {};
      pair.alice = (await aliceAccount.contact(`${name}@example.org`)).channel({
        onWrite: (_c, m) => pair.bob.read(m),
        onRead() {},
        onGoneSecure: () => ++secure === 4 && onSecure(),
      });
      pair.bob = (await bobAccount.contact(`${name}-${ALICE}`)).channel({
        onWrite: (_c, m) => pair.alice.read(m),
        onRead: (_c, m) => {
          if (name === 'slow') {
            keepBusy(1);
            slowTurns.push(turn);
          }
          received[name].push(m);
        },
        ...(name === 'asking' ? { onAfterDecrypt: (_c, m) => (questionTurns.add(turn), m.toUpperCase()) } : {}),
        onGoneSecure: () => ++secure === 4 && onSecure(),
      });
      pairs[name] = pair;
    }
    await new Promise((resolve) => {
      onSecure = resolve;
      pairs.slow.alice.init();
      pairs.asking.alice.init();
    });
    const slow = Array.from({ length: 300 }, (_, i) => `slow ${i}`);
    const asking = Array.from({ length: 30 }, (_, i) => `asking ${i}`);
    setImmediate(spin);
    const writes = slow.map((t) => pairs.slow.alice.write(t));
    // The questions come while bob's slow results wait to be applied.
    await turnsUntil(() => received.slow.length >= 50);
    const beforeQuestions = slowTurns.length;
    writes.push(...asking.map((t) => pairs.asking.alice.write(t)));
    await Promise.all(writes);
    await turnsUntil(() => received.slow.length === slow.length && received.asking.length === asking.length);
    spinning = false;
    assert.deepEqual(received.slow, slow);
    assert.deepEqual(
      received.asking,
      asking.map((t) => t.toUpperCase()),
    );
    const perTurn = new Map();
    for (const t of slowTurns) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
    // At a millisecond per slow result and half a millisecond per slice, a turn applies one
    // (the first slice, before the handle has timed a batch, takes more). Which turns those
    // are depends on the machine; that each held one does not.
    const firstTurn = slowTurns[0];
    const sliced = [...new Set(slowTurns.slice(0, beforeQuestions))].filter((t) => t !== firstTurn);
    assert.ok(sliced.length >= 10, `turns that applied slow results before the questions: ${sliced.length + 1}`);
    for (const t of sliced) assert.ok(perTurn.get(t) <= 2, `turn ${t} applied ${perTurn.get(t)} slow results`);
    // A question is answered at once, after everything waiting before it: a turn that applied
    // more than two slow results (other than the first) is one in which bob answered a question.
    for (const [t, count] of perTurn) {
      if (t === firstTurn || count <= 2) continue;
      assert.ok(questionTurns.has(t), `turn ${t} applied ${count} slow results without a question`);
    }
  },
);
