// Bad input: wrong types, malformed fingerprints, unknown sessions, throwing callbacks,
// use after close(), missing callbacks, bad maxMessageSize, garbage from the network.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { OTR, MessageEvent, ErrorCode, OtrError } from 'protocol-otr';
import {
  ALICE,
  BOB,
  PROTO,
  T,
  keys,
  cloneDir,
  openOTR,
  tmpdir,
  filesIn,
  closeAll,
  createPair,
  securePair,
  rejectsCode,
  hexToHuman,
} from './helpers/harness.mjs';

after(closeAll);

const INVALID = 'ERR_OTR_INVALID_ARGUMENT';
const noop = () => {};

async function aliceAccount() {
  const k = await keys();
  const otr = openOTR(cloneDir(k.aliceDir));
  const acct = await otr.account(ALICE, PROTO);
  return { otr, acct };
}

// ---- wrong argument types -------------------------------------------------------------

test('new OTR() with wrong option types throws ERR_OTR_INVALID_ARGUMENT', () => {
  const d = tmpdir();
  for (const bad of ['a string', 42, { privkeysFile: 42 }, { ...filesIn(d), contactsFile: {} }, { ...filesIn(d), instanceTagsFile: [] }]) {
    assert.throws(
      () => new OTR(bad),
      (e) => e instanceof OtrError && e.code === INVALID,
      JSON.stringify(bad),
    );
  }
});

test('otr.account() / findAccount() with wrong types: ERR_OTR_INVALID_ARGUMENT', T, async () => {
  const { otr } = await aliceAccount();
  await rejectsCode(() => otr.account(42, PROTO), INVALID, 'account(42)');
  await rejectsCode(() => otr.account(ALICE, null), INVALID, 'account(name, null)');
  await rejectsCode(() => otr.account(), INVALID, 'account()');
  assert.equal(otr.accounts().length, 1, 'nothing was created');
});

test('findAccount() / findContact() with wrong types throw ERR_OTR_INVALID_ARGUMENT', T, async () => {
  const { otr, acct } = await aliceAccount();
  await rejectsCode(() => otr.findAccount({}, PROTO), INVALID, 'findAccount({})');
  await rejectsCode(() => otr.findAccount(ALICE, 42), INVALID, 'findAccount(name, 42)');
  await rejectsCode(() => acct.findContact(7), INVALID, 'findContact(7)');
});

test('account.contact() with wrong types: ERR_OTR_INVALID_ARGUMENT', T, async () => {
  const { acct } = await aliceAccount();
  await rejectsCode(() => acct.contact(42), INVALID, 'contact(42)');
  await rejectsCode(() => acct.contact(null), INVALID, 'contact(null)');
  // "anything but 40 hex or the 44-char human form" is a bad fingerprint, whatever its type
  await rejectsCode(() => acct.contact(BOB, 1234), 'ERR_OTR_BAD_FINGERPRINT', 'numeric fingerprint');
  assert.deepEqual(acct.contacts(), []);
});

test('contact.channel() with wrongly typed options: ERR_OTR_INVALID_ARGUMENT', T, async () => {
  const { acct } = await aliceAccount();
  const cases = [
    { onWrite: 'not a function', onRead: noop },
    { onWrite: noop, onRead: 5 },
    { onWrite: noop, onRead: noop, onGoneSecure: 'x' },
    { onWrite: noop, onRead: noop, onSmp: {} },
    { onWrite: noop, onRead: noop, policy: 'always' },
    { onWrite: noop, onRead: noop, maxMessageSize: 'big' },
  ];
  let i = 0;
  for (const opts of cases) {
    const c = await acct.contact(`c${i++}@example.org`);
    await rejectsCode(() => c.channel(opts), INVALID, JSON.stringify(Object.keys(opts)));
    // a failed creation does not count as the contact's channel
    const ch = c.channel({ onWrite: noop, onRead: noop });
    assert.equal(ch.contact, c);
  }
});

test('channel methods with wrong types: ERR_OTR_INVALID_ARGUMENT, and the channel still works', T, async () => {
  const pair = await securePair();
  const ch = pair.alice.channel;
  await rejectsCode(() => ch.write(42), INVALID, 'write(42)');
  await rejectsCode(() => ch.write(), INVALID, 'write()');
  await rejectsCode(() => ch.read(null), INVALID, 'read(null)');
  await rejectsCode(() => ch.read({ text: 'x' }), INVALID, 'read({})');
  await rejectsCode(() => ch.createSymkey('2', 'x'), INVALID, 'createSymkey("2")');
  await rejectsCode(() => ch.createSymkey(2, 42), INVALID, 'createSymkey(2, 42)');
  await rejectsCode(() => ch.smpVerify(42), INVALID, 'smpVerify(42)');
  await rejectsCode(() => ch.smpVerify('a', 42), INVALID, 'smpVerify(a, 42)');
  await rejectsCode(() => ch.smpRespond(null), INVALID, 'smpRespond(null)');
  await rejectsCode(() => ch.selectSession('abc'), INVALID, 'selectSession("abc")');
  assert.deepEqual(
    pair.alice.wire.filter((w) => w.startsWith('?OTR:AAMD')),
    [],
    'nothing was sent',
  );
  await ch.write('fine');
  await pair.settle();
  assert.deepEqual(pair.bob.received, ['fine']);
});

// ---- fingerprints -----------------------------------------------------------------------

const GOOD_HEX = '0123456789abcdef0123456789abcdef01234567';

test('malformed fingerprints are ERR_OTR_BAD_FINGERPRINT and create nothing', T, async () => {
  const { acct } = await aliceAccount();
  const human = hexToHuman(GOOD_HEX);
  const bad = [
    '',
    'abc',
    GOOD_HEX.slice(0, 39),
    GOOD_HEX + '8',
    GOOD_HEX.slice(0, 39) + 'g',
    human.replace(/ /g, '-'),
    human.replace(' ', '  ').slice(0, 44),
    ` ${human.slice(0, 43)}`,
    human.slice(0, 43) + 'Z',
    `${GOOD_HEX.slice(0, 20)} ${GOOD_HEX.slice(20, 39)}`,
    '0x' + GOOD_HEX.slice(2),
  ];
  let i = 0;
  for (const fp of bad) {
    const name = `bad${i++}@example.org`;
    await rejectsCode(() => acct.contact(name, fp), 'ERR_OTR_BAD_FINGERPRINT', JSON.stringify(fp));
    assert.equal(acct.findContact(name), undefined, `${JSON.stringify(fp)}: no contact created`);
  }
});

test('well-formed fingerprints (40 hex, 44-char human form, any case) are accepted', T, async () => {
  const { acct } = await aliceAccount();
  const human = hexToHuman(GOOD_HEX);
  for (const [i, fp] of [GOOD_HEX, GOOD_HEX.toUpperCase(), human, human.toLowerCase()].entries()) {
    const c = await acct.contact(`ok${i}@example.org`, fp);
    assert.deepEqual(
      c.fingerprints().map((f) => f.hash),
      [human],
    );
  }
});

// ---- sessions -----------------------------------------------------------------------

test('selectSession() with an unknown instance tag returns false', T, async () => {
  const pair = await securePair();
  assert.equal(await pair.alice.channel.selectSession(0x12345678), false);
  const fresh = await createPair();
  assert.equal(await fresh.alice.channel.selectSession(0x12345678), false, 'no sessions at all');
});

// ---- callbacks that throw -----------------------------------------------------------

test('onRead that throws: read() rejects with ERR_OTR_CALLBACK (cause = the error) and the channel keeps working', T, async () => {
  const boom = new Error('onRead exploded');
  let throwOnce = true;
  const pair = await securePair({
    bob: {
      handlers: {
        onRead: () => {
          if (throwOnce) {
            throwOnce = false;
            throw boom;
          }
        },
      },
    },
  });
  pair.bob.pause();
  await pair.alice.channel.write('first');
  await pair.alice.channel.write('second');
  const [m1, m2] = pair.bob.take();
  const err = await rejectsCode(() => pair.bob.channel.read(m1), 'ERR_OTR_CALLBACK', 'read with throwing onRead');
  assert.equal(err.cause, boom);
  await pair.bob.channel.read(m2);
  assert.deepEqual(pair.bob.received, ['first', 'second'], 'both reached onRead');
  pair.bob.resume();
  await pair.bob.channel.write('reply');
  await pair.settle();
  assert.deepEqual(pair.alice.received, ['reply']);
});

test('onGoneSecure that throws: the same operation still runs its other callbacks (the peer goes secure too)', T, async () => {
  const pair = await createPair({
    alice: {
      handlers: {
        onGoneSecure: () => {
          throw new Error('gone secure boom');
        },
      },
    },
  });
  await pair.alice.channel.init();
  await pair.settle();
  // the read that completed alice's side rejected...
  const errs = pair.errors.filter((e) => e.party === 'alice');
  assert.equal(errs.length, 1);
  assert.equal(errs[0].error.code, 'ERR_OTR_CALLBACK');
  assert.equal(errs[0].error.cause?.message, 'gone secure boom');
  // ...but its onWrite (the signature message) still ran, so bob is private as well
  assert.equal(pair.alice.channel.status, 'Unverified');
  assert.equal(pair.bob.channel.status, 'Unverified');
  await pair.alice.channel.write('works');
  await pair.settle();
  assert.deepEqual(pair.bob.received, ['works']);
});

test('onWrite that throws: write() rejects with ERR_OTR_CALLBACK and later writes work', T, async () => {
  let throwOnce = false;
  const pair = await securePair({
    alice: {
      handlers: {
        onWrite: () => {
          if (throwOnce) {
            throwOnce = false;
            throw new Error('transport down');
          }
        },
      },
    },
  });
  throwOnce = true;
  const err = await rejectsCode(() => pair.alice.channel.write('lost?'), 'ERR_OTR_CALLBACK', 'write');
  assert.equal(err.cause?.message, 'transport down');
  await pair.alice.channel.write('next');
  await pair.settle();
  assert.deepEqual(pair.bob.received, ['lost?', 'next'], 'the harness had queued the first one before throwing');
});

test('onEvent that throws: read() rejects with ERR_OTR_CALLBACK, the event was delivered', T, async () => {
  const pair = await securePair({
    bob: {
      handlers: {
        onEvent: () => {
          throw new Error('event boom');
        },
      },
    },
  });
  await rejectsCode(() => pair.bob.channel.read('plain while private'), 'ERR_OTR_CALLBACK', 'read');
  assert.deepEqual(pair.bob.args('onEvent'), [[MessageEvent.RCVDMSG_UNENCRYPTED, 'plain while private']]);
});

test('onBeforeEncrypt that throws: the message goes out unchanged and write() rejects with ERR_OTR_CALLBACK', T, async () => {
  const pair = await securePair({
    alice: {
      handlers: {
        onBeforeEncrypt: () => {
          throw new Error('no');
        },
      },
    },
  });
  await rejectsCode(() => pair.alice.channel.write('unchanged'), 'ERR_OTR_CALLBACK', 'write');
  await pair.settle();
  assert.deepEqual(pair.bob.received, ['unchanged']);
});

test('onError that throws: the default error text is sent and read() rejects with ERR_OTR_CALLBACK', T, async () => {
  const pair = await securePair({
    bob: {
      handlers: {
        onError: () => {
          throw new Error('no text');
        },
      },
    },
  });
  const m = pair.alice.mark();
  await pair.alice.channel.write('once');
  await pair.settle();
  const [data] = pair.alice.wireSince(m);
  const bm = pair.bob.mark();
  await rejectsCode(() => pair.bob.channel.read(data), 'ERR_OTR_CALLBACK', 'replayed read');
  const errs = pair.bob.wireSince(bm).filter((w) => w.startsWith('?OTR Error:'));
  assert.equal(errs.length, 1);
  assert.ok(errs[0].length > '?OTR Error:'.length + 1);
});

// ---- close() ------------------------------------------------------------------------

test('every channel method after close() rejects with ERR_OTR_CLOSED', T, async () => {
  const pair = await securePair();
  const ch = pair.alice.channel;
  const fp = pair.alice.contact.activeFingerprint;
  await pair.alice.otr.close();
  const calls = {
    init: () => ch.init(),
    refresh: () => ch.refresh(),
    finish: () => ch.finish(),
    createSymkey: () => ch.createSymkey(2, 'x'),
    ping: () => ch.ping(),
    smpVerify: () => ch.smpVerify('x'),
    smpRespond: () => ch.smpRespond('x'),
    smpAbort: () => ch.smpAbort(),
    write: () => ch.write('x'),
    read: () => ch.read('x'),
    selectSession: () => ch.selectSession(1),
    setVerified: () => fp.setVerified(true),
    account: () => pair.alice.otr.account(ALICE, PROTO),
    contact: () => pair.alice.account.contact('z@example.org'),
  };
  const before = pair.alice.calls.length;
  for (const [name, fn] of Object.entries(calls)) await rejectsCode(fn, 'ERR_OTR_CLOSED', name);
  assert.equal(pair.alice.calls.length, before, 'no callback after close()');
});

// ---- missing callbacks, maxMessageSize --------------------------------------------------

test('a channel without onWrite or onRead is ERR_OTR_MISSING_CALLBACK', T, async () => {
  const { acct } = await aliceAccount();
  const c1 = await acct.contact('m1@example.org');
  await rejectsCode(() => c1.channel({ onRead: noop }), 'ERR_OTR_MISSING_CALLBACK', 'no onWrite');
  const c2 = await acct.contact('m2@example.org');
  await rejectsCode(() => c2.channel({ onWrite: noop }), 'ERR_OTR_MISSING_CALLBACK', 'no onRead');
  const c3 = await acct.contact('m3@example.org');
  await rejectsCode(() => c3.channel({}), 'ERR_OTR_MISSING_CALLBACK', 'no callbacks');
});

test('maxMessageSize too small to hold a fragment header (or negative, or fractional) is ERR_OTR_INVALID_ARGUMENT', T, async () => {
  const { acct } = await aliceAccount();
  let i = 0;
  for (const mms of [1, 20, 37, -1, 100.5, NaN]) {
    const c = await acct.contact(`mms${i++}@example.org`);
    await rejectsCode(() => c.channel({ onWrite: noop, onRead: noop, maxMessageSize: mms }), INVALID, `maxMessageSize ${mms}`);
  }
  for (const mms of [0, 38, 417]) {
    const c = await acct.contact(`mms${i++}@example.org`);
    assert.ok(c.channel({ onWrite: noop, onRead: noop, maxMessageSize: mms }), `maxMessageSize ${mms} accepted`);
  }
});

// ---- garbage from the network -----------------------------------------------------------

async function garbageCase(input, expectedEvents, { expectError } = {}) {
  const pair = await securePair({ bob: { handlers: { onError: (_c, code) => `err ${code}` } } });
  const data = typeof input === 'function' ? await input(pair) : input;
  const m2 = pair.bob.mark();
  await pair.bob.channel.read(data); // resolves: peer input is never an exception
  const events = pair.bob
    .since(m2)
    .filter((c) => c.name === 'onEvent')
    .map((c) => c.args[0]);
  assert.ok(
    expectedEvents.some((e) => events.includes(e)),
    `expected one of ${expectedEvents} for ${JSON.stringify(String(data).slice(0, 40))}, got ${events}`,
  );
  if (expectError !== undefined) {
    assert.deepEqual(
      pair.bob
        .since(m2)
        .filter((c) => c.name === 'onError')
        .map((c) => c.args[0]),
      [expectError],
    );
  }
  assert.equal(pair.bob.since(m2).filter((c) => c.name === 'onRead').length, 0, 'nothing shown to the user');
  await pair.settle();
  // the session still works both ways afterwards
  await pair.alice.channel.write('after garbage');
  await pair.bob.channel.write('me too');
  await pair.settle();
  assert.ok(pair.bob.received.includes('after garbage'), `bob received ${JSON.stringify(pair.bob.received)}`);
  assert.ok(pair.alice.received.includes('me too'));
  pair.assertNoErrors();
}

test('a short garbage data message raises RCVDMSG_MALFORMED and onError(MSG_MALFORMED)', T, async () => {
  await garbageCase('?OTR:AAMDxyz.', [MessageEvent.RCVDMSG_MALFORMED], { expectError: ErrorCode.MSG_MALFORMED });
});

test('a truncated data message raises RCVDMSG_MALFORMED', T, async () => {
  await garbageCase(
    async (pair) => {
      pair.bob.pause();
      await pair.alice.channel.write('a message that will be cut in half on the way');
      const [msg] = pair.bob.take();
      pair.bob.resume();
      return msg.slice(0, Math.floor(msg.length / 2));
    },
    [MessageEvent.RCVDMSG_MALFORMED],
  );
});

test('a tampered data message raises RCVDMSG_UNREADABLE and onError(MSG_UNREADABLE)', T, async () => {
  await garbageCase(
    async (pair) => {
      pair.bob.pause();
      await pair.alice.channel.write('tamper with me');
      const [msg] = pair.bob.take();
      pair.bob.resume();
      const i = 9 + 140; // inside the D-H key of the data message, covered by the MAC
      const flipped = msg[i] === 'A' ? 'B' : 'A';
      return msg.slice(0, i) + flipped + msg.slice(i + 1);
    },
    [MessageEvent.RCVDMSG_UNREADABLE],
    { expectError: ErrorCode.MSG_UNREADABLE },
  );
});

test('an unknown OTR message type raises RCVDMSG_UNRECOGNIZED', T, async () => {
  await garbageCase('?OTR:XYZ.', [MessageEvent.RCVDMSG_UNRECOGNIZED]);
});

test('an OTR error message raises RCVDMSG_GENERAL_ERR with its text', T, async () => {
  const pair = await securePair();
  await pair.bob.channel.read('?OTR Error: something went wrong ✗');
  assert.ok(pair.bob.args('onEvent').some(([c, t]) => c === MessageEvent.RCVDMSG_GENERAL_ERR && t === 'something went wrong ✗'));
  assert.deepEqual(pair.bob.received, []);
  await pair.settle();
  await pair.alice.channel.write('ok');
  await pair.settle();
  assert.ok(pair.bob.received.includes('ok'));
});

test('a garbage D-H commit raises SETUP_ERROR', T, async () => {
  const hdr = Buffer.from([0x00, 0x03, 0x02, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00, 0xde, 0xad]);
  await garbageCase(`?OTR:${hdr.toString('base64')}.`, [MessageEvent.SETUP_ERROR]);
});

test('a garbage fragment raises RCVDMSG_MALFORMED', T, async () => {
  await garbageCase('?OTR|zz|yy,1,2,abc,', [MessageEvent.RCVDMSG_MALFORMED]);
});

test('a message addressed to another instance raises RCVDMSG_FOR_OTHER_INSTANCE', T, async () => {
  await garbageCase(
    async (pair) => {
      pair.bob.pause();
      await pair.alice.channel.write('not for you');
      const [msg] = pair.bob.take();
      pair.bob.resume();
      const body = /\?OTR:([A-Za-z0-9+/=]+)\./.exec(msg)[1];
      const raw = Buffer.from(body, 'base64');
      raw.writeUInt32BE(0x0abcdef0, 7); // receiver instance tag
      return `?OTR:${raw.toString('base64')}.`;
    },
    [MessageEvent.RCVDMSG_FOR_OTHER_INSTANCE],
  );
});

test('incomplete fragments followed by a whole message: the message still arrives', T, async () => {
  const pair = await securePair({ alice: { maxMessageSize: 200 }, bob: { maxMessageSize: 200 } });
  pair.bob.pause();
  await pair.alice.channel.write('x'.repeat(600));
  const frags = pair.bob.take();
  assert.ok(frags.length > 2);
  pair.bob.resume();
  await pair.bob.channel.read(frags[0]); // only the first fragment ever arrives
  await pair.alice.channel.write('short');
  await pair.settle();
  assert.deepEqual(pair.bob.received, ['short']);
  pair.assertNoErrors();
});

test('huge and odd inputs to read() never crash: 1 MB garbage, lone surrogates, NUL, empty', T, async () => {
  const pair = await securePair();
  for (const junk of ['?OTR:AAMD' + 'A'.repeat(1 << 20) + '.', 'broken \uD800 surrogate', '', '?OTR', '?OTR:', '?OTRv', '?OTR|']) {
    await pair.bob.channel.read(junk);
  }
  await pair.settle();
  await pair.alice.channel.write('survived');
  await pair.settle();
  assert.ok(pair.bob.received.includes('survived'));
  assert.equal(pair.bob.channel.status, 'Unverified');
});

test(
  'NUL: a write holding it is refused with ERR_OTR_INVALID_ARGUMENT (libotr would cut it short); a received message holding it is dropped with RCVDMSG_MALFORMED and read() resolves',
  T,
  async () => {
    const pair = await securePair();
    await pair.bob.channel.read('nul\u0000inside');
    assert.ok(pair.bob.args('onEvent').some(([code, text]) => code === MessageEvent.RCVDMSG_MALFORMED && /NUL/.test(text)));
    await rejectsCode(() => pair.alice.channel.write('nul\u0000inside'), INVALID, 'write with NUL');
    await pair.alice.channel.write('fine');
    await pair.settle();
    assert.deepEqual(pair.bob.received, ['fine']);
  },
);
