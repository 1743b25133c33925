// SMP: smpVerify / smpRespond / smpAbort, onSmp (with its return value) and onSmpEvent.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { SmpEvent } from 'protocol-otr';
import { T, closeAll, createPair, securePair, rejectsCode } from './helpers/harness.mjs';

after(closeAll);

test('onSmp returning a string answers the request (no question: onSmp gets undefined)', T, async () => {
  const pair = await securePair({ bob: { handlers: { onSmp: () => 'shared secret' } } });
  await pair.alice.channel.smpVerify('shared secret');
  await pair.settle();
  assert.deepEqual(pair.bob.args('onSmp'), [[undefined]]);
  assert.ok(pair.alice.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
  pair.assertNoErrors();
});

test('SMP progress events follow libotr: initiator 60 then 100, responder asked at 25 then 100', T, async () => {
  const pair = await securePair({ bob: { handlers: { onSmp: () => 'x' } } });
  await pair.alice.channel.smpVerify('x');
  await pair.settle();
  assert.deepEqual(pair.alice.smpEvents(), [
    [SmpEvent.IN_PROGRESS, 60],
    [SmpEvent.SUCCESS, 100],
  ]);
  assert.deepEqual(pair.bob.smpEvents(), [
    [SmpEvent.ASK_FOR_SECRET, 25],
    [SmpEvent.SUCCESS, 100],
  ]);
});

test('a question raises ASK_FOR_ANSWER and reaches onSmp intact', T, async () => {
  const q = 'Where did we meet? 🍵 东京';
  const pair = await securePair({ bob: { handlers: { onSmp: () => 'Kyoto' } } });
  await pair.alice.channel.smpVerify('Kyoto', q);
  await pair.settle();
  assert.deepEqual(pair.bob.args('onSmp'), [[q]]);
  assert.deepEqual(pair.bob.smpEvents()[0], [SmpEvent.ASK_FOR_ANSWER, 25]);
  assert.ok(pair.alice.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
  // libotr: only the asking side gains trust from an SMP with a question
  assert.equal(pair.alice.channel.status, 'Private');
  assert.equal(pair.bob.channel.status, 'Unverified');
});

test('onSmp returning nothing leaves the request pending for smpRespond()', T, async () => {
  const pair = await securePair({ bob: { handlers: { onSmp: () => undefined } } });
  await pair.alice.channel.smpVerify('later');
  await pair.settle();
  assert.equal(pair.bob.count('onSmp'), 1);
  assert.ok(!pair.alice.smpEvents().some(([c]) => c === SmpEvent.SUCCESS || c === SmpEvent.FAILURE));
  await pair.bob.channel.smpRespond('later');
  await pair.settle();
  assert.ok(pair.alice.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
  assert.ok(pair.bob.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
  assert.equal(pair.bob.channel.status, 'Private');
});

test('smpRespond() with a wrong answer: FAILURE on both sides', T, async () => {
  const pair = await securePair({ bob: { omit: ['onSmp'] } });
  await pair.alice.channel.smpVerify('right');
  await pair.settle();
  await pair.bob.channel.smpRespond('wrong');
  await pair.settle();
  assert.deepEqual(pair.alice.smpEvents().at(-1), [SmpEvent.FAILURE, 100]);
  assert.deepEqual(pair.bob.smpEvents().at(-1), [SmpEvent.FAILURE, 100]);
});

test('non-ASCII secrets that differ only in non-ASCII characters do not match', T, async () => {
  const pair = await securePair({ bob: { handlers: { onSmp: () => 'zażółć' } } });
  await pair.alice.channel.smpVerify('zażółę');
  await pair.settle();
  assert.ok(
    pair.alice.smpEvents().some(([c]) => c === SmpEvent.FAILURE),
    JSON.stringify(pair.alice.smpEvents()),
  );
  assert.ok(!pair.alice.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
});

test('identical non-ASCII secrets match (UTF-8 on both sides)', T, async () => {
  const pair = await securePair({ bob: { handlers: { onSmp: () => 'пароль 🔐 密码' } } });
  await pair.alice.channel.smpVerify('пароль 🔐 密码');
  await pair.settle();
  assert.ok(pair.alice.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
  assert.ok(pair.bob.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
});

test('smpAbort() by the responder: the initiator gets SmpEvent.ABORT', T, async () => {
  const pair = await securePair({ bob: { omit: ['onSmp'] } });
  await pair.alice.channel.smpVerify('never answered');
  await pair.settle();
  assert.deepEqual(pair.bob.smpEvents(), [[SmpEvent.ASK_FOR_SECRET, 25]]);
  await pair.bob.channel.smpAbort();
  await pair.settle();
  assert.ok(
    pair.alice.smpEvents().some(([c]) => c === SmpEvent.ABORT),
    JSON.stringify(pair.alice.smpEvents()),
  );
  assert.equal(pair.alice.channel.status, 'Unverified');
  // a new SMP works after the abort
  await pair.alice.channel.smpVerify('again');
  await pair.settle();
  await pair.bob.channel.smpRespond('again');
  await pair.settle();
  assert.ok(pair.alice.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
});

test('a failed SMP after a successful one removes the trust again (libotr sets trust to "")', T, async () => {
  let answer = 'first';
  const pair = await securePair({ bob: { handlers: { onSmp: () => answer } } });
  await pair.alice.channel.smpVerify('first');
  await pair.settle();
  assert.equal(pair.alice.channel.status, 'Private');
  answer = 'not it';
  await pair.alice.channel.smpVerify('second');
  await pair.settle();
  assert.deepEqual(pair.alice.smpEvents().at(-1), [SmpEvent.FAILURE, 100]);
  assert.equal(pair.alice.channel.status, 'Unverified');
  assert.equal(pair.alice.contact.activeFingerprint.isVerified, false);
});

test('smpVerify() on a channel that is not private rejects with an OtrError', T, async () => {
  const pair = await createPair();
  await rejectsCode(() => pair.alice.channel.smpVerify('x'), 'ERR_OTR_NOT_PRIVATE', 'smpVerify');
  assert.deepEqual(pair.alice.wire, []);
});

test("a callback that throws in the reply sent from onSmp's answer: that read() rejects with ERR_OTR_CALLBACK, the SMP still completes", T, async () => {
  // docs/INTERPRETATION.md ("SMP trust"): the reply to a string returned by onSmp is sent
  // within the read() that carried the request, so that read's promise covers it.
  const boom = new Error('onWrite exploded in the SMP reply');
  let armed = false;
  const pair = await securePair({
    bob: {
      handlers: {
        onSmp: () => {
          armed = true;
          return 'secret';
        },
        onWrite: () => {
          if (armed) {
            armed = false;
            throw boom;
          }
        },
      },
    },
  });
  const events = [];
  pair.bob.otr.on('error', (e) => events.push(e));
  await pair.alice.channel.smpVerify('secret');
  await pair.settle();
  const errs = pair.errors;
  assert.equal(errs.length, 1, 'one read rejected');
  assert.equal(errs[0].party, 'bob');
  assert.equal(errs[0].error.code, 'ERR_OTR_CALLBACK');
  assert.equal(errs[0].error.cause, boom);
  assert.deepEqual(events, [], 'not reported twice');
  // the harness had queued the reply before the handler threw: the SMP completes
  assert.ok(pair.alice.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
  assert.ok(pair.bob.smpEvents().some(([c]) => c === SmpEvent.SUCCESS));
});
