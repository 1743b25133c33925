// Issue 4, item 5 — load without loss: many channels across two OTR instances, messages
// written without awaiting, delivered by a transport that interleaves the channels at random
// but keeps each channel's order (fragments included). Every message reaches onRead exactly
// once, in order; memory is flat over further identical rounds. Messages are checked as they
// arrive and not kept, so the memory figures are the library's, not the test's.
//
// Short form: 10 × 20 = 200 channels × 20 messages. Long form (OTR_LONG=1): 100 × 100 =
// 10,000 channels × 100 messages.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { LONG, PROTO, closeAll, openOTR, settleGc, tick, tmpdir, writeKeyFile } from '../helpers/harness.mjs';

after(closeAll);

// OTR_LOAD=AxBxM overrides the sizes (A alice accounts × B bob accounts channels, M messages).
const SIZES = /^(\d+)x(\d+)x(\d+)$/.exec(process.env.OTR_LOAD ?? '');
const ALICES = SIZES ? Number(SIZES[1]) : LONG ? 100 : 10;
const BOBS = SIZES ? Number(SIZES[2]) : LONG ? 100 : 20;
const MESSAGES = SIZES ? Number(SIZES[3]) : LONG ? 100 : 20;

const LONG_TEXT = 'long enough to be cut into fragments '.repeat(12);
// Message m of round r on channel id: every other one long on fragmenting channels.
const textOf = (r, id, m, fragment) => (fragment && m % 2 === 0 ? `${r}/${id}/${m} ${LONG_TEXT}` : `${r}/${id}/${m}`);

function memory() {
  const { rss, heapUsed } = process.memoryUsage();
  return { rss: rss / 1048576, heap: heapUsed / 1048576 };
}

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
    until.then(
      () => (done = true),
      () => (done = true),
    );
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

test(
  `${ALICES * BOBS} channels × ${MESSAGES} messages, randomly interleaved, fragments included: none lost, none duplicated, in order; memory flat`,
  { timeout: LONG ? 3_600_000 : 240_000 },
  async () => {
    const da = tmpdir('otr-rel-load-a-');
    const db = tmpdir('otr-rel-load-b-');
    const aliceNames = Array.from({ length: ALICES }, (_, i) => `alice${i}@example.org`);
    const bobNames = Array.from({ length: BOBS }, (_, i) => `bob${i}@example.org`);
    await writeKeyFile(da, aliceNames);
    await writeKeyFile(db, bobNames);
    const A = openOTR(da);
    const B = openOTR(db);
    const started = Date.now();
    const memStart = memory();
    const mixer = new Mixer();
    const pairs = [];
    const [alices, bobs] = await Promise.all([Promise.all(aliceNames.map((n) => A.account(n, PROTO))), Promise.all(bobNames.map((n) => B.account(n, PROTO)))]);
    for (const alice of alices) {
      for (const bob of bobs) {
        const id = pairs.length;
        const fragment = id % 3 === 0; // every third channel fragments its messages
        const [ca, cb] = await Promise.all([alice.contact(bob.name), bob.contact(alice.name)]);
        const a = { unexpected: 0 };
        // bob checks each message as it arrives against the next one expected on this channel.
        const b = { round: 0, next: 0, wrong: undefined, secure: 0 };
        const toB = mixer.queue(b);
        const toA = mixer.queue(a);
        const onReadB = (c, m) => {
          const want = textOf(b.round, id, b.next, fragment);
          if (m !== want && b.wrong === undefined)
            b.wrong = `message ${b.next}: got ${JSON.stringify(m.slice(0, 60))}, expected ${JSON.stringify(want.slice(0, 60))}`;
          b.next++;
        };
        // No query retries: under load an AKE can take longer than their interval.
        a.channel = ca.channel({ maxMessageSize: fragment ? 300 : 0, queryRetries: 0, onWrite: (c, m) => toB(m), onRead: () => a.unexpected++ });
        b.channel = cb.channel({ maxMessageSize: fragment ? 300 : 0, onWrite: (c, m) => toA(m), onRead: onReadB, onGoneSecure: () => b.secure++ });
        pairs.push({ id, a, b, fragment });
      }
    }
    // The AKEs, interleaved at random, 500 channels at a time: libotr's poll drops AKE state
    // older than 60 s, which thousands of AKEs run at once through one random mix can reach.
    // An init() that rejects is recorded (not a drain ended early with its reason lost).
    for (let i = 0; i < pairs.length; i += 500) {
      await mixer.drain(Promise.all(pairs.slice(i, i + 500).map((p) => p.a.channel.init().catch((e) => mixer.errors.push(e)))));
    }
    assert.deepEqual(mixer.errors, []);
    const notPrivate = pairs.filter((p) => p.a.channel.status !== 'Unverified' || p.b.channel.status !== 'Unverified');
    assert.equal(notPrivate.length, 0, `${notPrivate.length} channels did not become private`);
    const akeSeconds = (Date.now() - started) / 1000;

    async function round(r) {
      const t0 = Date.now();
      const before = mixer.delivered;
      for (const p of pairs) {
        p.b.round = r;
        p.b.next = 0;
      }
      const writes = [];
      for (let m = 0; m < MESSAGES; m++) {
        for (const p of pairs) writes.push(p.a.channel.write(textOf(r, p.id, m, p.fragment)));
      }
      await mixer.drain(Promise.all(writes));
      assert.deepEqual(mixer.errors, []);
      const wrong = pairs.filter((p) => p.b.next !== MESSAGES || p.b.wrong !== undefined);
      assert.deepEqual(
        wrong.slice(0, 5).map((p) => `channel ${p.id} (fragmenting: ${p.fragment}): ${p.b.next} of ${MESSAGES} arrived; ${p.b.wrong ?? 'in order'}`),
        [],
        `round ${r}: every message once, in order (${wrong.length} channels wrong)`,
      );
      assert.ok(
        pairs.every((p) => p.a.unexpected === 0),
        'alice received nothing',
      );
      return { seconds: (Date.now() - t0) / 1000, wire: mixer.delivered - before };
    }

    // Memory after each round, with everything the round made unreachable collected. The short
    // form runs six rounds: there RSS grows by some MB over rounds 2 to 4 while the allocator
    // settles (how many rounds that takes varies with the random mix), then stays; a leak would
    // keep growing. The check is on the last two rounds (the long form: its two rounds).
    const rounds = LONG || SIZES ? 2 : 6;
    const done = [];
    const memAfter = [];
    for (let r = 1; r <= rounds; r++) {
      done.push(await round(r));
      await settleGc();
      memAfter.push(memory());
    }
    // Growth of RSS over rounds from+1..to.
    const growthOver = (from, to) => (memAfter[to - 1].rss - memAfter[from - 1].rss) / memAfter[from - 1].rss;
    const checkedFrom = Math.max(1, rounds - 2);
    const pct = (x) => `${(x * 100).toFixed(1)} %`;
    const mb = (x) => x.toFixed(0);
    console.log(
      `# load: ${pairs.length} channels (${pairs.filter((p) => p.fragment).length} fragmenting at 300 bytes), AKEs ${akeSeconds.toFixed(1)} s; ` +
        `${rounds} rounds of ${pairs.length * MESSAGES} messages (round 1: ${done[0].wire} wire messages), 0 lost; ` +
        `seconds per round ${done.map((d) => d.seconds.toFixed(1)).join(', ')}; RSS start ${mb(memStart.rss)} MB, after each round ` +
        `${memAfter.map((m) => mb(m.rss)).join(', ')} MB (growth over round 2: ${pct(growthOver(1, 2))}, over rounds ${checkedFrom + 1}-${rounds}: ${pct(growthOver(checkedFrom, rounds))}); ` +
        `JS heap after each round ${memAfter.map((m) => mb(m.heap)).join(', ')} MB`,
    );
    const secureCounts = pairs.filter((p) => p.b.secure !== 1).map((p) => `channel ${p.id}: ${p.b.secure}`);
    assert.deepEqual(secureCounts, [], "each channel went secure exactly once (onGoneSecure calls on bob's side)");
    // 10 %: under heavy CPU contention the settling was seen to end as late as round 5 (+7 %
    // over rounds 5-6, else under 1 %); a leak of 1.3 KB per message would add 10 MB here.
    const limit = 0.1;
    const growth = growthOver(checkedFrom, rounds);
    assert.ok(growth < limit, `RSS after round ${rounds} within ${limit * 100} % of after round ${checkedFrom} (${pct(growth)})`);
    await Promise.all([A.close(), B.close()]);
  },
);
