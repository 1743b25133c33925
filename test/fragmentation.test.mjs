// Fragmentation: maxMessageSize, libotr's fragments, reassembly; unicode payloads.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { SmpEvent } from 'protocol-otr';
import { T, closeAll, createPair, securePair, isQuery, tmpdir, Net } from './helpers/harness.mjs';

after(closeAll);

const MMS = 417;
const bytes = (s) => Buffer.byteLength(s, 'utf8');

function bigText(min = 5000) {
  const unit = 'Zażółć gęślą jaźń 日本語のテキスト 🔐🌰 — ASCII tail 0123456789. ';
  let s = '';
  while (bytes(s) < min) s += unit;
  return s;
}

function assertAllWithin(pair, limit, { exceptQueries = true } = {}) {
  for (const p of [pair.alice, pair.bob]) {
    for (const w of p.wire) {
      if (exceptQueries && isQuery(w)) continue;
      assert.ok(bytes(w) <= limit, `${p.name} sent ${bytes(w)} bytes > ${limit}: ${w.slice(0, 40)}…`);
    }
  }
}

const fragments = (p) => p.wire.filter((w) => w.startsWith('?OTR|') || w.startsWith('?OTR,'));

test('AKE with maxMessageSize 417: every wire message fits and AKE messages are fragmented', T, async () => {
  const pair = await createPair({ alice: { maxMessageSize: MMS }, bob: { maxMessageSize: MMS } });
  await pair.alice.channel.init();
  await pair.settle();
  assert.equal(pair.alice.channel.status, 'Unverified');
  assert.equal(pair.bob.channel.status, 'Unverified');
  for (const p of [pair.alice, pair.bob]) for (const w of p.wire) assert.ok(bytes(w) <= MMS, `${p.name}: ${bytes(w)}`);
  assert.ok(fragments(pair.alice).length > 0 && fragments(pair.bob).length > 0, 'both sides fragmented');
  pair.assertNoErrors();
});

test('a 5 KB unicode message with maxMessageSize 417 is fragmented and reassembled exactly', T, async () => {
  const pair = await securePair({ alice: { maxMessageSize: MMS }, bob: { maxMessageSize: MMS } });
  const text = bigText(5000);
  const m = pair.alice.mark();
  await pair.alice.channel.write(text);
  const out = pair.alice.wireSince(m);
  assert.ok(out.length > 10, `fragmented into ${out.length}`);
  for (const w of out) {
    assert.ok(bytes(w) <= MMS, `${bytes(w)} bytes`);
    assert.ok(w.startsWith('?OTR|'), 'v3 fragment');
  }
  await pair.settle();
  assert.equal(pair.bob.received.length, 1);
  assert.equal(pair.bob.received[0], text);
  pair.assertNoErrors();
});

test('fragmented messages both ways, one after another, all reassembled in order', T, async () => {
  const pair = await securePair({ alice: { maxMessageSize: MMS }, bob: { maxMessageSize: MMS } });
  const a = [bigText(1200) + 'A1', bigText(3000) + 'A2', 'short A3'];
  const b = [bigText(2000) + 'B1', 'short B2'];
  for (const t of a) await pair.alice.channel.write(t);
  for (const t of b) await pair.bob.channel.write(t);
  await pair.settle();
  assert.deepEqual(pair.bob.received, a);
  assert.deepEqual(pair.alice.received, b);
  assertAllWithin(pair, MMS);
});

test('SMP with unicode secret and question over maxMessageSize 417: fragmented, succeeds', T, async () => {
  const q = 'Jak się nazywa nasz kot? 猫の名前 🐈';
  const s = 'Mruczek 🐾 ミケ';
  const pair = await securePair({
    alice: { maxMessageSize: MMS },
    bob: { maxMessageSize: MMS, handlers: { onSmp: (_c, question) => (question === q ? s : 'no') } },
  });
  const am = pair.alice.mark();
  const bm = pair.bob.mark();
  await pair.alice.channel.smpVerify(s, q);
  await pair.settle();
  assert.deepEqual(pair.bob.args('onSmp'), [[q]]);
  assert.ok(
    pair.alice.smpEvents().some(([c]) => c === SmpEvent.SUCCESS),
    JSON.stringify(pair.alice.smpEvents()),
  );
  assert.ok(pair.bob.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
  const smpWire = [...pair.alice.wireSince(am), ...pair.bob.wireSince(bm)];
  assert.ok(smpWire.length > 8, 'SMP messages were fragmented');
  for (const w of smpWire) assert.ok(bytes(w) <= MMS, `${bytes(w)} bytes`);
  pair.assertNoErrors();
});

test('maxMessageSize 0 (the prpl-jabber default): a 5 KB message is one wire message', T, async () => {
  const pair = await securePair();
  const text = bigText(5000);
  const m = pair.alice.mark();
  await pair.alice.channel.write(text);
  assert.equal(pair.alice.wireSince(m).length, 1);
  assert.ok(bytes(pair.alice.wireSince(m)[0]) > 5000);
  await pair.settle();
  assert.deepEqual(pair.bob.received, [text]);
});

test('explicit maxMessageSize 0 disables fragmentation', T, async () => {
  const pair = await securePair({ alice: { maxMessageSize: 0 } });
  const text = bigText(3000);
  const m = pair.alice.mark();
  await pair.alice.channel.write(text);
  assert.equal(pair.alice.wireSince(m).length, 1);
  await pair.settle();
  assert.deepEqual(pair.bob.received, [text]);
});

test('the smallest allowed maxMessageSize (38) still completes the AKE and delivers a message', T, async () => {
  const pair = await createPair({ alice: { maxMessageSize: 38 }, bob: { maxMessageSize: 38 } });
  await pair.alice.channel.init();
  await pair.settle();
  assert.equal(pair.alice.channel.status, 'Unverified');
  assert.equal(pair.bob.channel.status, 'Unverified');
  await pair.alice.channel.write('tiny fragments ✓');
  await pair.settle();
  assert.deepEqual(pair.bob.received, ['tiny fragments ✓']);
  assertAllWithin(pair, 38);
  pair.assertNoErrors();
});

test('prpl-irc defaults to maxMessageSize 417', T, async () => {
  const net = new Net();
  const alice = await net.addParty('alice', { dir: tmpdir(), account: 'alice', protocol: 'prpl-irc', contact: 'bob' });
  const bob = await net.addParty('bob', { dir: tmpdir(), account: 'bob', protocol: 'prpl-irc', contact: 'alice' });
  alice.peers = [bob];
  bob.peers = [alice];
  net.alice = alice;
  net.bob = bob;
  await alice.channel.init();
  await net.settle();
  assert.equal(alice.channel.status, 'Unverified');
  const text = bigText(3000);
  const m = alice.mark();
  await alice.channel.write(text);
  const out = alice.wireSince(m);
  assert.ok(out.length > 1, 'fragmented by default');
  for (const w of out) assert.ok(bytes(w) <= 417, `${bytes(w)} bytes`);
  await net.settle();
  assert.deepEqual(bob.received, [text]);
  assertAllWithin(net, 417);
  net.assertNoErrors();
});
