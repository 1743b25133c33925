// Channel: methods, getters and every callback, driven through the two-party harness.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { Policy, MessageEvent, ErrorCode, Instag } from 'protocol-otr';
import { ALICE, BOB, T, closeAll, createPair, securePair, senderInstag, isQuery } from './helpers/harness.mjs';

after(closeAll);

test('status goes Unused → Not private → Unverified through init() and the AKE', T, async () => {
  const pair = await createPair();
  const { alice, bob } = pair;
  assert.equal(alice.channel.status, 'Unused');
  assert.equal(bob.channel.status, 'Unused');
  alice.peers = []; // hold the query back for a moment
  await alice.channel.init();
  assert.equal(alice.channel.status, 'Not private', 'a session exists once something was sent');
  alice.peers = [bob];
  await bob.channel.read(alice.wire[0]);
  await pair.settle();
  assert.equal(alice.channel.status, 'Unverified');
  assert.equal(bob.channel.status, 'Unverified');
  pair.assertNoErrors();
});

test('init() sends the default OTR query, which names the account', T, async () => {
  const pair = await createPair();
  pair.bob.pause();
  await pair.alice.channel.init();
  assert.equal(pair.alice.wire.length, 1);
  const q = pair.alice.wire[0];
  assert.ok(q.startsWith('?OTRv23?'), `query offers v2 and v3: ${JSON.stringify(q.slice(0, 20))}`);
  assert.ok(q.includes(ALICE), 'query text names the account');
});

test('the AKE step by step: message types, callbacks before each promise resolves, synchronous status', T, async () => {
  const pair = await createPair();
  const { alice, bob } = pair;
  alice.pause();
  bob.pause();
  await alice.channel.init();
  const [query] = bob.take();
  assert.ok(isQuery(query));

  await bob.channel.read(query);
  const commit = alice.take();
  assert.equal(commit.length, 1);
  assert.ok(commit[0].startsWith('?OTR:AAMC'), 'bob answers with a v3 D-H commit');

  await alice.channel.read(commit[0]);
  const key = bob.take();
  assert.ok(key[0].startsWith('?OTR:AAMK'), 'alice answers with a D-H key');

  await bob.channel.read(key[0]);
  const reveal = alice.take();
  assert.ok(reveal[0].startsWith('?OTR:AAMR'), 'bob reveals his signature');
  assert.equal(alice.count('onGoneSecure'), 0);

  await alice.channel.read(reveal[0]);
  // Everything this read caused has run by the time its promise resolved.
  assert.equal(alice.count('onGoneSecure'), 1, 'alice went secure during that read');
  assert.equal(alice.channel.status, 'Unverified', 'status reflects the resolved read at once');
  const sig = bob.take();
  assert.ok(sig[0].startsWith('?OTR:AAMS'), 'alice sends her signature');
  assert.equal(bob.channel.status, 'Not private');

  await bob.channel.read(sig[0]);
  assert.equal(bob.count('onGoneSecure'), 1);
  assert.equal(bob.channel.status, 'Unverified');
  pair.assertNoErrors();
});

test('onGoneSecure fires once on each side with the channel', T, async () => {
  const pair = await securePair();
  for (const p of [pair.alice, pair.bob]) {
    const calls = p.calls.filter((c) => c.name === 'onGoneSecure');
    assert.equal(calls.length, 1, `${p.name} gone secure once`);
    assert.equal(calls[0].channel, p.channel);
    assert.deepEqual(calls[0].args, []);
    assert.equal(p.count('onGoneInsecure'), 0);
  }
});

test('every callback receives its own channel as first argument', T, async () => {
  // Every callback given, including the value-returning ones (whatever the harness's mode).
  const handlers = { onSmp: () => 's', onBeforeEncrypt: (_c, m) => m, onAfterDecrypt: (_c, m) => m, onIsContactLoggedIn: () => 1 };
  const pair = await securePair({ alice: { handlers }, bob: { handlers } });
  await pair.alice.channel.write('hello');
  await pair.bob.channel.createSymkey(3, 'x');
  await pair.settle();
  await pair.alice.channel.smpVerify('s');
  await pair.settle();
  await pair.bob.channel.finish();
  await pair.settle();
  let n = 0;
  for (const p of [pair.alice, pair.bob]) {
    for (const c of p.calls) {
      assert.equal(c.channel, p.channel, `${p.name}.${c.name} got its channel`);
      n++;
    }
  }
  const seen = new Set([...pair.alice.calls, ...pair.bob.calls].map((c) => c.name));
  for (const name of [
    'onWrite',
    'onRead',
    'onGoneSecure',
    'onGoneInsecure',
    'onUnverifiedFingerprint',
    'onSymkey',
    'onSmp',
    'onEvent',
    'onSmpEvent',
    'onBeforeEncrypt',
    'onAfterDecrypt',
    'onIsContactLoggedIn',
    'onTimer',
  ]) {
    assert.ok(seen.has(name), `${name} was exercised`);
  }
  assert.ok(n > 20);
  pair.assertNoErrors();
});

test('write() on a private channel: onWrite gets an OTR data message, the peer onRead gets the text', T, async () => {
  const pair = await securePair();
  const m = pair.alice.mark();
  await pair.alice.channel.write('Hi Bob 👋 — żółć 日本');
  const out = pair.alice.wireSince(m);
  assert.equal(out.length, 1);
  assert.ok(out[0].startsWith('?OTR:AAMD'), 'encrypted data message');
  assert.ok(!out[0].includes('Hi Bob'), 'the text is not on the wire');
  await pair.settle();
  assert.deepEqual(pair.bob.received, ['Hi Bob 👋 — żółć 日本']);
  await pair.bob.channel.write('Hi Alice');
  await pair.settle();
  assert.deepEqual(pair.alice.received, ['Hi Alice']);
  pair.assertNoErrors();
});

test('write() resolves after onWrite ran; read() resolves after onRead ran', T, async () => {
  const pair = await securePair();
  pair.bob.pause();
  const m = pair.alice.mark();
  await pair.alice.channel.write('one');
  assert.equal(pair.alice.wireSince(m).length, 1, 'onWrite ran before write() resolved');
  const [msg] = pair.bob.take();
  await pair.bob.channel.read(msg);
  assert.deepEqual(pair.bob.received, ['one'], 'onRead ran before read() resolved');
});

test('onRead never receives OTR protocol messages', T, async () => {
  const pair = await securePair();
  await pair.alice.channel.write('x');
  await pair.bob.channel.createSymkey(5, 'y');
  await pair.settle();
  for (const p of [pair.alice, pair.bob]) {
    for (const m of p.received) assert.ok(!m.includes('?OTR'), `${p.name} onRead got ${JSON.stringify(m.slice(0, 30))}`);
  }
  assert.deepEqual(pair.bob.received, ['x']);
  assert.deepEqual(pair.alice.received, []);
});

test('onUnverifiedFingerprint tells each side the peer fingerprint, not seen before', T, async () => {
  const pair = await securePair();
  const { alice, bob, fingerprints } = pair;
  assert.deepEqual(alice.args('onUnverifiedFingerprint'), [[fingerprints.bob, false]]);
  assert.deepEqual(bob.args('onUnverifiedFingerprint'), [[fingerprints.alice, false]]);
  assert.deepEqual(
    alice.contact.fingerprints().map((f) => f.hash),
    [fingerprints.bob],
  );
});

test('onBeforeEncrypt transforms outgoing data messages; onAfterDecrypt incoming ones', T, async () => {
  const pair = await securePair({
    alice: { handlers: { onBeforeEncrypt: (_c, m) => m.toUpperCase() } },
    bob: { handlers: { onAfterDecrypt: (_c, m) => `[${m}]` } },
  });
  await pair.alice.channel.write('secret words');
  await pair.settle();
  assert.deepEqual(pair.alice.args('onBeforeEncrypt'), [['secret words']]);
  assert.deepEqual(pair.bob.args('onAfterDecrypt'), [['SECRET WORDS']]);
  assert.deepEqual(pair.bob.received, ['[SECRET WORDS]']);
  pair.assertNoErrors();
});

test('onBeforeEncrypt returning a non-string leaves the message unchanged', T, async () => {
  const pair = await securePair({ alice: { handlers: { onBeforeEncrypt: () => 42 } } });
  await pair.alice.channel.write('as is');
  await pair.settle();
  assert.deepEqual(pair.bob.received, ['as is']);
});

test('onAfterDecrypt returning undefined leaves the message unchanged', T, async () => {
  const pair = await securePair({ bob: { handlers: { onAfterDecrypt: () => undefined } } });
  await pair.alice.channel.write('as is');
  await pair.settle();
  assert.deepEqual(pair.bob.received, ['as is']);
});

test('onBeforeEncrypt is not applied to plaintext that is not encrypted', T, async () => {
  const pair = await createPair({
    alice: { policy: Policy.MANUAL, handlers: { onBeforeEncrypt: (_c, m) => m.toUpperCase() } },
    bob: { policy: Policy.MANUAL },
  });
  await pair.alice.channel.write('plain');
  await pair.settle();
  assert.deepEqual(pair.alice.wire, ['plain']);
  assert.deepEqual(pair.bob.received, ['plain']);
  assert.equal(pair.alice.count('onBeforeEncrypt'), 0);
});

test('onEvent: a replayed data message raises RCVDMSG_UNREADABLE and onError(MSG_UNREADABLE) text goes out', T, async () => {
  const pair = await securePair({ bob: { handlers: { onError: (_c, code) => `custom error ${code}` } } });
  const { alice, bob } = pair;
  const m = alice.mark();
  await alice.channel.write('once');
  await pair.settle();
  const [data] = alice.wireSince(m);
  const bm = bob.mark();
  await bob.channel.read(data); // replay
  const events = bob
    .since(bm)
    .filter((c) => c.name === 'onEvent')
    .map((c) => c.args[0]);
  assert.ok(events.includes(MessageEvent.RCVDMSG_UNREADABLE), `events: ${events}`);
  assert.deepEqual(
    bob
      .since(bm)
      .filter((c) => c.name === 'onError')
      .map((c) => c.args),
    [[ErrorCode.MSG_UNREADABLE]],
  );
  assert.ok(bob.wireSince(bm).includes(`?OTR Error: custom error ${ErrorCode.MSG_UNREADABLE}`), 'error text sent');
  assert.deepEqual(bob.received, ['once'], 'the replay is not shown');
  await pair.settle();
  // alice reads the error message as a general error carrying the text
  assert.ok(
    alice.args('onEvent').some(([code, text]) => code === MessageEvent.RCVDMSG_GENERAL_ERR && text === `custom error ${ErrorCode.MSG_UNREADABLE}`),
    'alice gets RCVDMSG_GENERAL_ERR with the text',
  );
  pair.assertNoErrors();
});

test('onError returning nothing: the library sends a default, non-empty error text', T, async () => {
  const pair = await securePair({ bob: { handlers: { onError: () => undefined } } });
  const m = pair.alice.mark();
  await pair.alice.channel.write('once');
  await pair.settle();
  const [data] = pair.alice.wireSince(m);
  const bm = pair.bob.mark();
  await pair.bob.channel.read(data);
  const errs = pair.bob.wireSince(bm).filter((w) => w.startsWith('?OTR Error:'));
  assert.equal(errs.length, 1);
  assert.ok(errs[0].slice('?OTR Error:'.length).trim().length > 0, 'default text is not empty');
});

test('onError absent: a default error text is still sent', T, async () => {
  const pair = await securePair({ bob: { omit: ['onError'] } });
  const m = pair.alice.mark();
  await pair.alice.channel.write('once');
  await pair.settle();
  const [data] = pair.alice.wireSince(m);
  const bm = pair.bob.mark();
  await pair.bob.channel.read(data);
  const errs = pair.bob.wireSince(bm).filter((w) => w.startsWith('?OTR Error:'));
  assert.equal(errs.length, 1);
  assert.ok(errs[0].slice('?OTR Error:'.length).trim().length > 0);
});

test('onIsContactLoggedIn returning 0 or false: finish() sends nothing and the peer stays private', T, async () => {
  for (const answer of [0, false, -1]) {
    const pair = await securePair({ alice: { handlers: { onIsContactLoggedIn: () => answer } } });
    const m = pair.alice.mark();
    await pair.alice.channel.finish();
    assert.equal(pair.alice.count('onIsContactLoggedIn'), 1, `consulted (answer ${answer})`);
    assert.deepEqual(pair.alice.wireSince(m), [], `nothing sent when onIsContactLoggedIn → ${answer}`);
    assert.equal(pair.alice.channel.status, 'Not private');
    await pair.settle();
    assert.equal(pair.bob.channel.status, 'Unverified');
  }
});

test('onIsContactLoggedIn returning true: finish() tells the contact', T, async () => {
  const pair = await securePair({ alice: { handlers: { onIsContactLoggedIn: () => true } } });
  await pair.alice.channel.finish();
  await pair.settle();
  assert.equal(pair.bob.channel.status, 'Finished');
});

test('onIsContactLoggedIn absent means 1: finish() tells the contact', T, async () => {
  const pair = await securePair({ alice: { omit: ['onIsContactLoggedIn'] } });
  const m = pair.alice.mark();
  await pair.alice.channel.finish();
  assert.equal(pair.alice.wireSince(m).length, 1);
  await pair.settle();
  assert.equal(pair.bob.channel.status, 'Finished');
  assert.equal(pair.bob.count('onGoneInsecure'), 1);
});

test('onStillSecure: a new AKE on an already private channel (init() again) reports still secure', T, async () => {
  const pair = await securePair();
  const { alice, bob } = pair;
  const am = alice.mark();
  const bm = bob.mark();
  await alice.channel.init();
  await pair.settle();
  const aliceStates = alice.since(am).filter((c) => ['onGoneSecure', 'onGoneInsecure', 'onStillSecure'].includes(c.name));
  const bobStates = bob.since(bm).filter((c) => ['onGoneSecure', 'onGoneInsecure', 'onStillSecure'].includes(c.name));
  // libotr: the side that completes the new AKE while its session is still ENCRYPTED with the
  // same fingerprint reports still_secure (alice: she sent the query and verifies bob's
  // reveal-signature). Bob answered the query from the master context; whether his instance
  // session counts as still secure (libotr's fixed behaviour) or gone secure (stock libotr 4.1.1
  // resets it to the master's plaintext state on the D-H key) is left open here: the refresh()
  // test in behaviours.test.mjs pins down what API.md requires of the other side.
  assert.deepEqual(
    aliceStates.map((c) => c.name),
    ['onStillSecure'],
  );
  assert.equal(aliceStates[0].channel, alice.channel);
  assert.deepEqual(aliceStates[0].args, []);
  assert.equal(bobStates.length, 1, `bob: ${bobStates.map((c) => c.name)}`);
  assert.ok(['onGoneSecure', 'onStillSecure'].includes(bobStates[0].name));
  assert.equal(alice.channel.status, 'Unverified');
  assert.equal(bob.channel.status, 'Unverified');
  await alice.channel.write('after re-AKE');
  await pair.settle();
  assert.deepEqual(bob.received, ['after re-AKE']);
  pair.assertNoErrors();
});

test('sessions() holds the contact instance tag, which is currentSession and the tag on its wire messages', T, async () => {
  const pair = await securePair();
  const { alice, bob } = pair;
  const tagOfBob = alice.channel.currentSession;
  const tagOfAlice = bob.channel.currentSession;
  assert.ok(tagOfBob >= 0x100, 'a valid v3 instance tag');
  assert.ok(tagOfAlice >= 0x100);
  assert.notEqual(tagOfBob, tagOfAlice);
  assert.deepEqual(alice.channel.sessions(), [tagOfBob]);
  assert.deepEqual(bob.channel.sessions(), [tagOfAlice]);
  const m = bob.mark();
  await bob.channel.write('tagged');
  assert.equal(senderInstag(bob.wireSince(m)[0]), tagOfBob, 'bob sends with the tag alice sees');
  assert.equal(senderInstag(alice.wire.find((w) => w.startsWith('?OTR:AAMD') || w.startsWith('?OTR:AAMS'))), tagOfAlice);
  await pair.settle();
});

test('selectSession(): the current session and Instag selectors return true, an unknown tag false', T, async () => {
  const pair = await securePair();
  const ch = pair.alice.channel;
  const cur = ch.currentSession;
  assert.ok(ch.sessions().includes(cur));
  assert.equal(await ch.selectSession(cur), true);
  assert.equal(ch.currentSession, cur);
  for (const sel of [Instag.BEST, Instag.RECENT, Instag.RECENT_RECEIVED, Instag.RECENT_SENT]) {
    assert.equal(await ch.selectSession(sel), true, `Instag ${sel}`);
    assert.equal(ch.currentSession, cur, 'only one session: every selector resolves to it');
  }
  assert.equal(await ch.selectSession(0x7fffff01), false, 'unknown instance tag');
  assert.equal(ch.currentSession, cur, 'a failed select leaves the selection alone');
  await ch.write('still here');
  await pair.settle();
  assert.deepEqual(pair.bob.received, ['still here']);
});

test('ping() resolves on a private and on an unused channel', T, async () => {
  const pair = await securePair();
  await pair.alice.channel.ping();
  await pair.bob.channel.ping();
  const fresh = await createPair();
  await fresh.alice.channel.ping();
  assert.equal(fresh.alice.wire.length, 0, 'ping sends nothing');
});

test('channel.account and channel.contact are the owners', T, async () => {
  const pair = await createPair();
  assert.equal(pair.alice.channel.account.name, ALICE);
  assert.equal(pair.alice.channel.contact.name, BOB);
  assert.equal(pair.alice.channel.contact, pair.alice.contact);
  assert.equal(pair.alice.channel.account, pair.alice.account);
});

test('OPPORTUNISTIC plaintext carries the whitespace tag and starts the AKE; the text is shown without the tag', T, async () => {
  const pair = await createPair();
  await pair.alice.channel.write('hello there');
  const w = pair.alice.wire[0];
  assert.ok(w.startsWith('hello there'), 'sent in clear (policy does not require encryption)');
  assert.notEqual(w, 'hello there', 'with the whitespace tag appended');
  assert.ok(w.includes(' \t  \t\t\t\t \t \t \t  '), 'OTR whitespace tag base');
  await pair.settle();
  assert.deepEqual(pair.bob.received, ['hello there']);
  assert.equal(pair.alice.channel.status, 'Unverified');
  assert.equal(pair.bob.channel.status, 'Unverified');
  pair.assertNoErrors();
});
