// API.md, "Behaviour that the Perl module's users rely on, and that it got wrong": one test each,
// plus the decisions in docs/INTERPRETATION.md that go with them.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { Policy, MessageEvent, SmpEvent } from 'protocol-otr';
import { BOB, T, closeAll, createPair, securePair, isQuery, hexToHuman } from './helpers/harness.mjs';

after(closeAll);

const WRONG_HEX = '12345678' + '90abcdef' + '12345678' + '90abcdef' + '12345678';

test('pre-seeded wrong fingerprint: the AKE learns a second one and onUnverifiedFingerprint says seenBefore true', T, async () => {
  const pair = await createPair();
  const { alice, bob, fingerprints } = pair;
  await alice.account.contact(BOB, hexToHuman(WRONG_HEX));
  assert.equal(alice.contact.fingerprints().length, 1);
  await alice.channel.init();
  await pair.settle();
  assert.equal(alice.channel.status, 'Unverified');
  assert.equal(bob.channel.status, 'Unverified');
  assert.deepEqual(alice.args('onUnverifiedFingerprint'), [[fingerprints.bob, true]], 'alice had seen another key before');
  assert.deepEqual(bob.args('onUnverifiedFingerprint'), [[fingerprints.alice, false]], 'fresh contact: not seen before');
  assert.deepEqual(
    alice.contact
      .fingerprints()
      .map((f) => f.hash)
      .sort(),
    [hexToHuman(WRONG_HEX), fingerprints.bob].sort(),
  );
  assert.equal(alice.contact.activeFingerprint.hash, fingerprints.bob);
  const wrong = alice.contact.fingerprints().find((f) => f.hash === hexToHuman(WRONG_HEX));
  assert.equal(wrong.status, 'Unused');
  pair.assertNoErrors();
});

test('a fresh contact: onUnverifiedFingerprint says seenBefore false', T, async () => {
  const pair = await securePair();
  assert.deepEqual(pair.alice.args('onUnverifiedFingerprint'), [[pair.fingerprints.bob, false]]);
});

test('createSymkey: the other side onSymkey gets the same bytes, use and unicode useFor', T, async () => {
  const pair = await securePair();
  const useFor = 'testing unicode ążśźęćół — 日本語 🔑';
  const key = await pair.alice.channel.createSymkey(2, useFor);
  await pair.settle();
  assert.ok(Buffer.isBuffer(key));
  assert.equal(key.length, 32);
  const got = pair.bob.args('onSymkey');
  assert.equal(got.length, 1);
  const [symkey, use, usedFor] = got[0];
  assert.ok(Buffer.isBuffer(symkey));
  assert.ok(symkey.equals(key), 'same key bytes');
  assert.equal(use, 2);
  assert.equal(usedFor, useFor);
  pair.assertNoErrors();
});

test('finish(): the peer goes insecure with status Finished and LOG_HEARTBEAT_RCVD; onIsContactLoggedIn consulted', T, async () => {
  const pair = await securePair({ alice: { handlers: { onIsContactLoggedIn: () => 1 } } });
  const { alice, bob } = pair;
  const am = alice.mark();
  const bm = bob.mark();
  await alice.channel.finish();
  assert.equal(alice.since(am).filter((c) => c.name === 'onIsContactLoggedIn').length, 1, 'alice asked');
  assert.equal(alice.channel.status, 'Not private');
  await pair.settle();
  const bobCalls = bob.since(bm);
  assert.equal(bobCalls.filter((c) => c.name === 'onGoneInsecure').length, 1);
  const heartbeat = bobCalls.filter((c) => c.name === 'onEvent' && c.args[0] === MessageEvent.LOG_HEARTBEAT_RCVD);
  assert.equal(heartbeat.length, 1, 'LOG_HEARTBEAT_RCVD');
  assert.equal(heartbeat[0].args[1], undefined, 'no message text with a heartbeat');
  assert.equal(bob.channel.status, 'Finished');
  assert.equal(bob.contact.activeFingerprint, undefined, 'libotr clears the active fingerprint of a finished session');
  assert.equal(bob.count('onRead'), 0);
  pair.assertNoErrors();
});

test('finishing an insecure channel sends nothing', T, async () => {
  const pair = await createPair();
  await pair.alice.channel.finish();
  assert.deepEqual(pair.alice.wire, []);
  // also after a plaintext exchange
  const p2 = await createPair({ alice: { policy: Policy.MANUAL }, bob: { policy: Policy.MANUAL } });
  await p2.alice.channel.write('plain');
  await p2.settle();
  const m = p2.bob.mark();
  await p2.bob.channel.finish();
  await p2.settle();
  assert.deepEqual(p2.bob.wireSince(m), []);
  assert.equal(p2.alice.count('onGoneInsecure') + p2.alice.count('onEvent'), 0, 'peer not contacted');
});

test('Policy.ALWAYS: writing on a non-private channel raises ENCRYPTION_REQUIRED, starts the AKE, delivers once secure', T, async () => {
  const pair = await createPair({ alice: { policy: Policy.ALWAYS } });
  const { alice, bob } = pair;
  await alice.channel.write('hello, encrypted');
  assert.deepEqual(alice.args('onEvent')[0], [MessageEvent.ENCRYPTION_REQUIRED, 'hello, encrypted']);
  assert.ok(isQuery(alice.wire[0]), 'an OTR query went out instead of the text');
  await pair.settle();
  assert.equal(alice.channel.status, 'Unverified');
  assert.deepEqual(bob.received, ['hello, encrypted'], 'delivered exactly once');
  for (const w of alice.wire) assert.ok(!w.includes('hello, encrypted'), 'never sent in clear');
  const sentAfterSecure = alice.wire.filter((w) => w.startsWith('?OTR:AAMD'));
  assert.equal(sentAfterSecure.length, 1, 'one data message (no libotr resend duplicate)');
  assert.ok(!alice.events().includes(MessageEvent.MSG_RESENT));
  pair.assertNoErrors();
});

test('plaintext read on a channel whose policy wants encryption raises RCVDMSG_UNENCRYPTED with the text', T, async () => {
  const pair = await createPair({ alice: { policy: Policy.NEVER }, bob: { policy: Policy.ALWAYS } });
  await pair.alice.channel.write('Plain text message');
  assert.deepEqual(pair.alice.wire, ['Plain text message']);
  await pair.settle();
  assert.ok(
    pair.bob.args('onEvent').some(([code, text]) => code === MessageEvent.RCVDMSG_UNENCRYPTED && text === 'Plain text message'),
    `bob events: ${JSON.stringify(pair.bob.args('onEvent'))}`,
  );
  pair.assertNoErrors();
});

test('plaintext read on a private channel raises RCVDMSG_UNENCRYPTED with the text', T, async () => {
  const pair = await securePair();
  await pair.bob.channel.read('Plain text message');
  assert.deepEqual(
    pair.bob.args('onEvent').filter(([c]) => c === MessageEvent.RCVDMSG_UNENCRYPTED),
    [[MessageEvent.RCVDMSG_UNENCRYPTED, 'Plain text message']],
  );
});

test('SMP with the right answer makes both sides Private with the fingerprint verified', T, async () => {
  const pair = await securePair({ bob: { handlers: { onSmp: () => 'Zuzanna lubi je tylko jesienią.' } } });
  await pair.alice.channel.smpVerify('Zuzanna lubi je tylko jesienią.');
  await pair.settle();
  for (const p of [pair.alice, pair.bob]) {
    assert.ok(
      p.smpEvents().some(([c, pr]) => c === SmpEvent.SUCCESS && pr === 100),
      `${p.name} SUCCESS`,
    );
    assert.equal(p.channel.status, 'Private', `${p.name} Private`);
    assert.equal(p.contact.activeFingerprint.isVerified, true);
    assert.equal(p.contact.activeFingerprint.status, 'Private');
  }
  pair.assertNoErrors();
});

test('SMP with a wrong answer gives SmpEvent.FAILURE on both sides', T, async () => {
  const pair = await securePair({ bob: { handlers: { onSmp: () => 'Na placu Pigalle' } } });
  await pair.alice.channel.smpVerify('Zuzanna lubi je tylko jesienią.', 'W Paryżu najlepsze kasztany są…?');
  await pair.settle();
  for (const p of [pair.alice, pair.bob]) {
    assert.ok(
      p.smpEvents().some(([c]) => c === SmpEvent.FAILURE),
      `${p.name} FAILURE: ${JSON.stringify(p.smpEvents())}`,
    );
    assert.ok(!p.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
    assert.equal(p.channel.status, 'Unverified');
    assert.equal(p.contact.activeFingerprint.isVerified, false);
  }
  pair.assertNoErrors();
});

test('refresh(): the refreshing side sees gone-insecure then gone-secure; the other side sees gone-secure', T, async () => {
  const pair = await securePair();
  const { alice, bob } = pair;
  const am = alice.mark();
  const bm = bob.mark();
  const STATES = ['onGoneSecure', 'onGoneInsecure', 'onStillSecure'];
  await alice.channel.refresh();
  assert.equal(alice.channel.status, 'Not private', 'back to plaintext until the new AKE completes');
  assert.ok(alice.wireSince(am).some(isQuery), 'refresh sends an OTR query');
  await pair.settle();
  assert.deepEqual(
    alice
      .since(am)
      .filter((c) => STATES.includes(c.name))
      .map((c) => c.name),
    ['onGoneInsecure', 'onGoneSecure'],
  );
  assert.deepEqual(
    bob
      .since(bm)
      .filter((c) => STATES.includes(c.name))
      .map((c) => c.name),
    ['onGoneSecure'],
  );
  assert.equal(alice.channel.status, 'Unverified');
  assert.equal(bob.channel.status, 'Unverified');
  await bob.channel.write('with fresh keys');
  await pair.settle();
  assert.deepEqual(alice.received, ['with fresh keys']);
  pair.assertNoErrors();
});

test('refresh(): writes made while re-keying are held, never sent in clear, and delivered once private', T, async () => {
  const pair = await securePair();
  const { alice, bob } = pair;
  const am = alice.mark();
  await alice.channel.refresh();
  await alice.channel.write('during refresh');
  await pair.settle();
  assert.deepEqual(bob.received, ['during refresh']);
  for (const w of alice.wireSince(am)) assert.ok(!w.includes('during refresh'), 'not in clear');
  pair.assertNoErrors();
});

test('the current session is among sessions() and selecting it returns true', T, async () => {
  const pair = await securePair();
  for (const p of [pair.alice, pair.bob]) {
    const cur = p.channel.currentSession;
    assert.ok(p.channel.sessions().includes(cur), `${p.name}: ${cur} in ${p.channel.sessions()}`);
    assert.equal(await p.channel.selectSession(cur), true);
  }
});

test('messages written while the AKE is pending are all delivered, in order, once private', T, async () => {
  const pair = await createPair({ alice: { policy: Policy.ALWAYS } });
  const texts = Array.from({ length: 25 }, (_, i) => `burst ${i} ✓`);
  await Promise.all(texts.map((t) => pair.alice.channel.write(t)));
  await pair.settle();
  assert.deepEqual(pair.bob.received, texts);
  for (const w of pair.alice.wire) for (const t of texts) assert.ok(!w.includes(t));
  pair.assertNoErrors();
});

test('every queued write raises ENCRYPTION_REQUIRED with its text; only the first starts an AKE', T, async () => {
  const pair = await createPair({ alice: { policy: Policy.ALWAYS } });
  pair.bob.pause();
  await pair.alice.channel.write('a');
  await pair.alice.channel.write('b');
  await pair.alice.channel.write('c');
  assert.deepEqual(pair.alice.args('onEvent'), [
    [MessageEvent.ENCRYPTION_REQUIRED, 'a'],
    [MessageEvent.ENCRYPTION_REQUIRED, 'b'],
    [MessageEvent.ENCRYPTION_REQUIRED, 'c'],
  ]);
  assert.equal(pair.alice.wire.filter(isQuery).length, 1, 'one query');
  assert.equal(pair.alice.wire.length, 1, 'nothing else went out');
  pair.bob.resume();
  await pair.settle();
  assert.deepEqual(pair.bob.received, ['a', 'b', 'c']);
});

test('finish() drops queued writes and reports each with CONNECTION_ENDED', T, async () => {
  const pair = await createPair({ alice: { policy: Policy.ALWAYS } });
  pair.bob.pause();
  await pair.alice.channel.write('q1');
  await pair.alice.channel.write('q2');
  const m = pair.alice.mark();
  await pair.alice.channel.finish();
  const ended = pair.alice
    .since(m)
    .filter((c) => c.name === 'onEvent')
    .map((c) => c.args);
  assert.deepEqual(ended, [
    [MessageEvent.CONNECTION_ENDED, 'q1'],
    [MessageEvent.CONNECTION_ENDED, 'q2'],
  ]);
  pair.bob.resume();
  await pair.settle();
  assert.deepEqual(pair.bob.received, [], 'dropped messages never arrive');
});

test('writing while the contact has finished raises CONNECTION_ENDED and sends nothing; finish() then init() recover', T, async () => {
  const pair = await securePair();
  const { alice, bob } = pair;
  await alice.channel.finish();
  await pair.settle();
  assert.equal(bob.channel.status, 'Finished');
  const m = bob.mark();
  await bob.channel.write('too late');
  assert.ok(bob.since(m).some((c) => c.name === 'onEvent' && c.args[0] === MessageEvent.CONNECTION_ENDED));
  assert.deepEqual(bob.wireSince(m), [], 'nothing sent, not even an empty message');
  await bob.channel.finish();
  assert.equal(bob.channel.status, 'Not private');
  await bob.channel.init();
  await pair.settle();
  assert.equal(alice.channel.status, 'Unverified');
  assert.equal(bob.channel.status, 'Unverified');
  await bob.channel.write('back again');
  await pair.settle();
  assert.deepEqual(alice.received, ['back again']);
  pair.assertNoErrors();
});

test('policy NEVER: plaintext passes through onWrite and onRead unchanged', T, async () => {
  const pair = await createPair({ alice: { policy: Policy.NEVER }, bob: { policy: Policy.NEVER } });
  await pair.alice.channel.write('plain ✓ 日本');
  await pair.settle();
  assert.deepEqual(pair.alice.wire, ['plain ✓ 日本']);
  assert.deepEqual(pair.bob.received, ['plain ✓ 日本']);
});

test('policy MANUAL: plaintext passes through onWrite and onRead unchanged', T, async () => {
  const pair = await createPair({ alice: { policy: Policy.MANUAL }, bob: { policy: Policy.MANUAL } });
  await pair.alice.channel.write('manual');
  await pair.bob.channel.write('reply');
  await pair.settle();
  assert.deepEqual(pair.alice.wire, ['manual']);
  assert.deepEqual(pair.bob.wire, ['reply']);
  assert.deepEqual(pair.bob.received, ['manual']);
  assert.deepEqual(pair.alice.received, ['reply']);
  assert.equal(pair.alice.channel.status, 'Not private');
});

test('untagged plaintext received on an OPPORTUNISTIC channel reaches onRead', T, async () => {
  const pair = await createPair();
  await pair.bob.channel.read('just text from a non-OTR client');
  assert.deepEqual(pair.bob.received, ['just text from a non-OTR client']);
  assert.deepEqual(pair.bob.wire, []);
});

test('onSmpEvent fires without onSmp, and smpRespond() answers later', T, async () => {
  const pair = await securePair({ bob: { omit: ['onSmp'] } });
  await pair.alice.channel.smpVerify('later');
  await pair.settle();
  assert.deepEqual(pair.bob.smpEvents(), [[SmpEvent.ASK_FOR_SECRET, 25]]);
  await pair.bob.channel.smpRespond('later');
  await pair.settle();
  assert.ok(pair.alice.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
  assert.ok(pair.bob.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
  assert.equal(pair.alice.channel.status, 'Private');
});

test('SMP secrets and questions are UTF-8 on both sides', T, async () => {
  const question = 'W Paryżu najlepsze kasztany są na placu… 哪里? 🌰';
  const secret = 'Zażółć gęślą jaźń — 栗子 🌰';
  const pair = await securePair({ bob: { handlers: { onSmp: (_c, q) => (q === question ? secret : 'wrong') } } });
  await pair.alice.channel.smpVerify(secret, question);
  await pair.settle();
  assert.deepEqual(pair.bob.args('onSmp'), [[question]]);
  assert.ok(
    pair.alice.smpEvents().some(([c]) => c === SmpEvent.SUCCESS),
    JSON.stringify(pair.alice.smpEvents()),
  );
  assert.equal(pair.alice.channel.status, 'Private');
});

test('a failed createSymkey rejects (not private) and sends nothing', T, async () => {
  const pair = await createPair();
  // Bob never hears the query, so nothing else can make alice write meanwhile.
  pair.bob.pause();
  await pair.alice.channel.init();
  const m = pair.alice.mark();
  let threw = false;
  try {
    const k = await pair.alice.channel.createSymkey(2, 'nope');
    assert.fail(`createSymkey resolved with ${k?.toString?.('hex')}`);
  } catch (e) {
    threw = true;
    assert.equal(e.name, 'OtrError', `got ${e}`);
    assert.ok(['ERR_OTR_SYMKEY', 'ERR_OTR_NOT_PRIVATE'].includes(e.code), e.code);
  }
  assert.ok(threw);
  assert.deepEqual(pair.alice.wireSince(m), []);
});

test('library never calls exit(): bad input and broken peers leave the process running', T, async () => {
  const pair = await securePair();
  for (const junk of ['?OTR:AAMDx.', '?OTR|zz|yy,1,2,abc,', '?OTR:AAMK' + 'A'.repeat(40) + '.', '?OTR:AAMC' + '/'.repeat(64) + '.']) {
    await pair.bob.channel.read(junk);
  }
  await pair.settle();
  assert.equal(typeof process.pid, 'number');
  await pair.alice.channel.write('alive');
  await pair.settle();
  assert.ok(pair.bob.received.includes('alive'));
});
