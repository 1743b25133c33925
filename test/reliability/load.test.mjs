// Issue 4, item 5 — load without loss: many channels across two OTR instances, messages
// written without awaiting, delivered by a transport that interleaves the channels at random
// but keeps each channel's order (fragments included). Every message reaches onRead exactly
// once, in order; memory is flat over a second identical round.
//
// Short form: 10 × 20 = 200 channels × 20 messages. Long form (OTR_LONG=1): 100 × 100 =
// 10,000 channels × 100 messages.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { LONG, PROTO, cleanup, open, rssMB, settleGc, tick, tmpdir, writeKeyFile } from './util.mjs';

after(cleanup);

// OTR_LOAD=AxBxM overrides the sizes (A alice accounts × B bob accounts channels, M messages).
const SIZES = /^(\d+)x(\d+)x(\d+)$/.exec(process.env.OTR_LOAD ?? '');
const ALICES = SIZES ? Number(SIZES[1]) : LONG ? 100 : 10;
const BOBS = SIZES ? Number(SIZES[2]) : LONG ? 100 : 20;
const MESSAGES = SIZES ? Number(SIZES[3]) : LONG ? 100 : 20;

// Per-channel queues; deliver() picks a random non-empty queue and hands its head to read()
// without waiting, so channels interleave at random while each queue stays in order.
class Mixer {
  constructor() {
    this.active = [];
    this.pending = [];
    this.errors = [];
    this.delivered = 0;
  }

  queue(side) {
    side.q = [];
    side.on = false;
    return (m) => {
      side.q.push(m);
      if (!side.on) {
        side.on = true;
        this.active.push(side);
      }
    };
  }

  async drain(until) {
    let done = false;
    until.then(() => (done = true), () => (done = true));
    for (;;) {
      if (this.active.length === 0) {
        if (this.pending.length > 0) {
          await Promise.all(this.pending.splice(0));
          continue;
        }
        if (done) return;
        await tick();
        continue;
      }
      const k = Math.floor(Math.random() * this.active.length);
      const side = this.active[k];
      const m = side.q.shift();
      if (side.q.length === 0) {
        side.on = false;
        this.active[k] = this.active[this.active.length - 1];
        this.active.pop();
      }
      this.delivered++;
      this.pending.push(side.channel.read(m).catch((e) => this.errors.push(e)));
      if (this.pending.length >= 4000) await Promise.all(this.pending.splice(0));
    }
  }
}

test(`${ALICES * BOBS} channels × ${MESSAGES} messages, randomly interleaved, fragments included: none lost, none duplicated, in order; memory flat`, { timeout: LONG ? 3_600_000 : 240_000 }, async () => {
  const da = tmpdir('otr-rel-load-a-');
  const db = tmpdir('otr-rel-load-b-');
  const aliceNames = Array.from({ length: ALICES }, (_, i) => `alice${i}@example.org`);
  const bobNames = Array.from({ length: BOBS }, (_, i) => `bob${i}@example.org`);
  await writeKeyFile(da, aliceNames);
  await writeKeyFile(db, bobNames);
  const A = open(da);
  const B = open(db);
  const started = Date.now();
  const rssStart = rssMB();
  const mixer = new Mixer();
  const pairs = [];
  const [alices, bobs] = await Promise.all([
    Promise.all(aliceNames.map((n) => A.account(n, PROTO))),
    Promise.all(bobNames.map((n) => B.account(n, PROTO))),
  ]);
  for (const alice of alices) {
    for (const bob of bobs) {
      const id = pairs.length;
      const fragment = id % 3 === 0; // every third channel fragments its messages
      const [ca, cb] = await Promise.all([alice.contact(bob.name), bob.contact(alice.name)]);
      const a = { got: [] };
      const b = { got: [], secure: 0 };
      const toB = mixer.queue(b);
      const toA = mixer.queue(a);
      a.channel = ca.channel({ maxMessageSize: fragment ? 300 : 0, onWrite: (c, m) => toB(m), onRead: (c, m) => a.got.push(m) });
      b.channel = cb.channel({ maxMessageSize: fragment ? 300 : 0, onWrite: (c, m) => toA(m), onRead: (c, m) => b.got.push(m), onGoneSecure: () => b.secure++ });
      pairs.push({ id, a, b, fragment });
    }
  }
  // The AKEs, interleaved at random, 500 channels at a time: libotr's poll drops AKE state
  // older than 60 s, which thousands of AKEs run at once through one random mix can reach.
  for (let i = 0; i < pairs.length; i += 500) {
    await mixer.drain(Promise.all(pairs.slice(i, i + 500).map((p) => p.a.channel.init())));
  }
  assert.deepEqual(mixer.errors, []);
  const notPrivate = pairs.filter((p) => p.a.channel.status !== 'Unverified' || p.b.channel.status !== 'Unverified');
  assert.equal(notPrivate.length, 0, `${notPrivate.length} channels did not become private`);
  const akeSeconds = (Date.now() - started) / 1000;

  async function round(r) {
    const t0 = Date.now();
    const before = mixer.delivered;
    const writes = [];
    for (let m = 0; m < MESSAGES; m++) {
      for (const p of pairs) {
        const text = p.fragment && m % 2 === 0 ? `${r}/${p.id}/${m} ${'long enough to be cut into fragments '.repeat(12)}` : `${r}/${p.id}/${m}`;
        writes.push(p.a.channel.write(text));
      }
    }
    await mixer.drain(Promise.all(writes));
    assert.deepEqual(mixer.errors, []);
    let lost = 0;
    for (const p of pairs) {
      const expected = Array.from({ length: MESSAGES }, (_, m) => (p.fragment && m % 2 === 0 ? `${r}/${p.id}/${m} ${'long enough to be cut into fragments '.repeat(12)}` : `${r}/${p.id}/${m}`));
      if (p.b.got.length !== MESSAGES || p.b.got.some((m, i) => m !== expected[i])) {
        lost++;
        assert.deepEqual(p.b.got, expected, `channel ${p.id} (fragmenting: ${p.fragment}): every message once, in order`);
      }
      p.b.got.length = 0;
    }
    assert.equal(lost, 0);
    return { seconds: (Date.now() - t0) / 1000, wire: mixer.delivered - before };
  }

  const first = await round(1);
  await settleGc();
  const rssAfterFirst = rssMB();
  const second = await round(2);
  await settleGc();
  const rssAfterSecond = rssMB();
  const growth = (rssAfterSecond - rssAfterFirst) / rssAfterFirst;
  console.log(`# load: ${pairs.length} channels (${pairs.filter((p) => p.fragment).length} fragmenting at 300 bytes), AKEs ${akeSeconds.toFixed(1)} s; ` +
    `round 1: ${pairs.length * MESSAGES} messages (${first.wire} wire messages) in ${first.seconds.toFixed(1)} s, 0 lost; ` +
    `round 2: ${pairs.length * MESSAGES} messages in ${second.seconds.toFixed(1)} s, 0 lost; ` +
    `RSS start ${rssStart.toFixed(0)} MB, after round 1 ${rssAfterFirst.toFixed(0)} MB, after round 2 ${rssAfterSecond.toFixed(0)} MB (${(growth * 100).toFixed(1)} %)`);
  assert.ok(pairs.every((p) => p.b.secure === 1), 'each channel went secure exactly once');
  if (LONG || SIZES) assert.ok(growth < 0.1, `RSS after a second identical round within 10 % of after the first (${(growth * 100).toFixed(1)} %)`);
  else assert.ok(growth < 0.5, `RSS roughly flat over a second round (${(growth * 100).toFixed(1)} %)`);
  await Promise.all([A.close(), B.close()]);
});
