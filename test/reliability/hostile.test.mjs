// Issue 4, item 6 — hostile peers: 1,000 AKEs started and never finished, SMP messages out of
// order, fragments that never complete, replayed data messages. Memory stays bounded, the
// right events are raised, and a legitimate conversation on the same OTR keeps working.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MessageEvent, SmpEvent } from 'protocol-otr';
import { LONG, Net, PROTO, closeAll, filesIn, makeSecure, openOTR, rssMB, settleGc, tmpdir, writeKeyFile } from '../helpers/harness.mjs';

const T = { timeout: LONG ? 1_800_000 : 300_000 };
after(closeAll);

// Victim: alice. Legitimate peer: bob (his own OTR). Attacker: mallory (her own OTR, plus
// raw messages crafted from what her OTR produced).
let A;
let B;
let M;
let link;
let bob; // { a: alice's side, b: bob's side }
let mal; // { a: alice's side, b: mallory's side }

before(async () => {
  const [da, db, dm] = [tmpdir(), tmpdir(), tmpdir()];
  await Promise.all([writeKeyFile(da, ['alice@example.org']), writeKeyFile(db, ['bob@example.org']), writeKeyFile(dm, ['mallory@example.org'])]);
  // Alice answers everything: the floods here show what memory the work libotr does for them
  // costs (a contact spreading them over time stays within the default key-work budget, which
  // test/reliability/bridge-surface.test.mjs shows stopping a burst).
  A = openOTR({ ...filesIn(da), maxKeyWorkPerContact: 0xffffffff });
  B = openOTR(db);
  M = openOTR(dm);
  link = new Net({ manual: true });
  bob = await link.connect(A, 'alice@example.org', B, 'bob@example.org', { onSmp: () => 'alice and bob' }, { onSmp: () => 'alice and bob' });
  mal = await link.connect(A, 'alice@example.org', M, 'mallory@example.org', { onSmp: () => 'not telling' }, { onSmp: () => 'not telling' });
  await makeSecure(link, bob.a, bob.b);
});

// The legitimate conversation still works: messages both ways, and a fresh AKE.
async function legitimateStillWorks(tag) {
  const before = bob.b.received.length;
  await bob.a.channel.write(`${tag}: hello bob`);
  await bob.b.channel.write(`${tag}: hello alice`);
  await link.pump();
  assert.equal(bob.b.received.at(-1), `${tag}: hello bob`);
  assert.equal(bob.a.received.at(-1), `${tag}: hello alice`);
  assert.equal(bob.b.received.length, before + 1);
  await bob.b.channel.refresh();
  await link.pump();
  assert.equal(bob.a.channel.status, 'Unverified');
  assert.equal(bob.b.channel.status, 'Unverified');
  await bob.b.channel.write(`${tag}: after a new AKE`);
  await link.pump();
  assert.equal(bob.a.received.at(-1), `${tag}: after a new AKE`);
  assert.deepEqual(bob.a.errors, []);
  assert.deepEqual(bob.b.errors, []);
}

// OTR v3 message bytes ↔ wire text.
const decode = (wire) => Buffer.from(/^\?OTR:([A-Za-z0-9+/=]+)\./.exec(wire)[1], 'base64');
const encode = (bytes) => `?OTR:${bytes.toString('base64')}.`;

test('a peer that starts 1,000 AKEs and never finishes them: memory bounded, the legitimate conversation keeps working', T, async () => {
  const count = LONG ? 10_000 : 1000;
  // A real DH-commit from mallory's OTR: her answer to alice's query.
  mal.a.deliver = false;
  await mal.a.channel.init();
  mal.a.deliver = true;
  const query = mal.a.wire.at(-1);
  mal.b.deliver = false;
  await mal.b.channel.read(query);
  mal.b.deliver = true;
  const commit = decode(mal.b.wire.at(-1));
  assert.equal(commit[2], 0x02, 'a DH-commit message');

  await settleGc();
  const rssBefore = rssMB();
  const replies = mal.a.wire.length;
  mal.a.deliver = false; // alice's DH-key answers go nowhere
  for (let i = 0; i < count; i++) {
    // Each from a new sender instance tag: a new half-open AKE (and libotr context) each time.
    const forged = Buffer.from(commit);
    forged.writeUInt32BE(0x1000 + i, 3);
    await mal.a.channel.read(encode(forged));
    // And the same instance restarting its AKE over and over.
    if (i % 10 === 0) await mal.a.channel.read(encode(commit));
  }
  mal.a.deliver = true;
  await settleGc();
  const rssAfter = rssMB();
  const answered = mal.a.wire.length - replies;
  console.log(
    `# hostile AKE flood: ${count} DH-commits from ${count} instance tags (+${count / 10} restarts), alice answered ${answered}; RSS ${rssBefore.toFixed(1)} → ${rssAfter.toFixed(1)} MB (+${(rssAfter - rssBefore).toFixed(1)} MB, ${(((rssAfter - rssBefore) * 1024) / count).toFixed(1)} KiB per half-open AKE)`,
  );
  assert.ok(answered >= count, 'alice answered every DH-commit (a DH-key each)');
  assert.ok(rssAfter - rssBefore < (LONG ? 400 : 64), `memory bounded: +${(rssAfter - rssBefore).toFixed(1)} MB for ${count} half-open AKEs`);
  assert.deepEqual(mal.a.errors, []);
  await legitimateStillWorks('after the AKE flood');
});

test('a peer that floods fragments that never complete: memory bounded, no message appears', T, async () => {
  const alice = A.findAccount('alice@example.org', PROTO);
  const ours = alice.instanceTag.toString(16).padStart(8, '0');
  const theirs = (0x2000).toString(16).padStart(8, '0');
  const gotBefore = mal.a.received.length;
  await settleGc();
  const rssBefore = rssMB();
  const piece = 'A'.repeat(1000);
  const count = LONG ? 30_000 : 10_000;
  for (let i = 0; i < count; i++) {
    // Always a new first fragment of a long message that never gets its second.
    const n = 2 + (i % 60000);
    await mal.a.channel.read(`?OTR|${theirs}|${ours},00001,${String(n).padStart(5, '0')},${piece},`);
  }
  // One message cut into as many fragments as the format allows, never finished.
  const growing = LONG ? 10_000 : 2000;
  for (let k = 1; k <= growing; k++) {
    await mal.a.channel.read(`?OTR|${theirs}|${ours},${String(k).padStart(5, '0')},65535,${piece},`);
  }
  await settleGc();
  const rssAfter = rssMB();
  console.log(
    `# hostile fragments: ${count} unfinished first fragments and one message of ${growing} × 1 KB fragments never completed; RSS ${rssBefore.toFixed(1)} → ${rssAfter.toFixed(1)} MB (+${(rssAfter - rssBefore).toFixed(1)} MB)`,
  );
  assert.equal(mal.a.received.length, gotBefore, 'no fragment reached onRead');
  assert.ok(rssAfter - rssBefore < 64, `memory bounded: +${(rssAfter - rssBefore).toFixed(1)} MB`);
  assert.deepEqual(mal.a.errors, []);
  await legitimateStillWorks('after the fragment flood');
});

test('a peer that replays old data messages: RCVDMSG_UNREADABLE each time, never a duplicate', T, async () => {
  // A real session with mallory, then her messages again.
  await makeSecure(link, mal.a, mal.b);
  const start = mal.b.wire.length;
  for (let i = 0; i < 10; i++) await mal.b.channel.write(`mallory ${i}`);
  const sent = mal.b.wire.slice(start);
  await link.pump();
  const got = mal.a.received.length;
  assert.deepEqual(
    mal.a.received.slice(-10),
    Array.from({ length: 10 }, (_, i) => `mallory ${i}`),
  );
  const events = mal.a.args('onEvent').length;
  const rounds = LONG ? 100 : 10;
  mal.a.deliver = false; // alice's error replies to mallory
  for (let r = 0; r < rounds; r++) for (const m of sent) await mal.a.channel.read(m);
  // And after the keys moved on (alice answered, mallory's keys rotated): older still.
  mal.a.deliver = true;
  await mal.a.channel.write('rotate');
  await link.pump();
  await mal.b.channel.write('newer');
  await link.pump();
  mal.a.deliver = false;
  for (const m of sent) await mal.a.channel.read(m);
  mal.a.deliver = true;
  const replayed = mal.a
    .args('onEvent')
    .slice(events)
    .filter(([code]) => code === MessageEvent.RCVDMSG_UNREADABLE).length;
  console.log(`# hostile replays: ${sent.length * (rounds + 1)} replayed data messages, ${replayed} RCVDMSG_UNREADABLE events, 0 duplicates`);
  assert.equal(replayed, sent.length * (rounds + 1), 'every replay raised RCVDMSG_UNREADABLE');
  assert.deepEqual(mal.a.received.slice(got), ['newer'], 'no replay reached onRead');
  assert.equal(mal.a.channel.status, 'Unverified', 'the session with mallory is still up');
  assert.deepEqual(mal.a.errors, []);
  await legitimateStillWorks('after the replays');
});

test('a peer that sends SMP messages out of order: SMP error/abort on alice, and SMP still works afterwards', T, async () => {
  const abortish = new Set([SmpEvent.ERROR, SmpEvent.ABORT, SmpEvent.CHEATED]);
  if (mal.a.channel.status !== 'Unverified') await makeSecure(link, mal.a, mal.b);

  // (a) SMP2 arriving when alice expects SMP1: alice started, mallory answered, alice aborted.
  let mark = mal.a.smpEvents().length;
  await mal.a.channel.smpVerify('not telling'); // SMP1 → mallory
  mal.b.deliver = false;
  await mal.b.channel.read(mal.b.inbox.shift()); // SMP2, withheld
  const smp2 = mal.b.wire.at(-1);
  mal.b.deliver = true;
  mal.a.deliver = false;
  await mal.a.channel.smpAbort();
  mal.a.deliver = true;
  await mal.a.channel.read(smp2);
  const eventsA = mal.a
    .smpEvents()
    .slice(mark)
    .map(([code]) => code);
  assert.ok(eventsA.includes(SmpEvent.ERROR), `alice reports the out-of-order SMP2 as SmpEvent.ERROR: ${JSON.stringify(eventsA)}`);
  assert.ok(!eventsA.includes(SmpEvent.SUCCESS));

  // (b) mallory restarting SMP in the middle of alice's: SMP1 when alice expects SMP2.
  await link.pump();
  mark = mal.a.smpEvents().length;
  mal.a.deliver = false;
  await mal.a.channel.smpVerify('not telling'); // alice's SMP1 never reaches mallory
  mal.a.deliver = true;
  mal.b.deliver = false;
  await mal.b.channel.smpVerify('not telling'); // mallory's own SMP1, withheld
  const smp1 = mal.b.wire.at(-1);
  // (c) and a flood of stale SMP messages
  mal.b.deliver = true;
  await mal.a.channel.read(smp1);
  await link.pump();
  const eventsB = mal.a
    .smpEvents()
    .slice(mark)
    .map(([code]) => code);
  const names = (codes) => codes.map((c) => Object.keys(SmpEvent).find((k) => SmpEvent[k] === c) ?? c).join(', ');
  console.log(`# hostile SMP: out-of-order SMP2 → alice: ${names(eventsA)}; crossing SMP1 → alice: ${names(eventsB)}`);
  assert.ok(
    eventsB.some((c) => abortish.has(c)),
    `alice reports the crossing SMP1 as an SMP error/abort: ${JSON.stringify(eventsB)}`,
  );

  // Everything settles down: an in-order SMP with the right secret succeeds.
  await mal.a.channel.smpAbort();
  await link.pump();
  mark = mal.a.smpEvents().length;
  const markB = mal.b.smpEvents().length;
  await mal.a.channel.smpVerify('not telling');
  await link.pump();
  assert.ok(
    mal.a
      .smpEvents()
      .slice(mark)
      .some(([code]) => code === SmpEvent.SUCCESS),
    `alice: ${JSON.stringify(mal.a.smpEvents().slice(mark))}`,
  );
  assert.ok(
    mal.b
      .smpEvents()
      .slice(markB)
      .some(([code]) => code === SmpEvent.SUCCESS),
    `mallory: ${JSON.stringify(mal.b.smpEvents().slice(markB))}`,
  );
  assert.deepEqual(mal.a.errors, []);
  await legitimateStillWorks('after the SMP games');
  // The legitimate SMP, too.
  const markBob = bob.a.smpEvents().length;
  await bob.a.channel.smpVerify('alice and bob');
  await link.pump();
  assert.ok(
    bob.a
      .smpEvents()
      .slice(markBob)
      .some(([code]) => code === SmpEvent.SUCCESS),
  );
  assert.equal(bob.a.channel.status, 'Private');
});
