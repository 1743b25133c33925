// What promises mean: smpVerify()/smpRespond() resolve once their SMP message is sent, with
// the exchange's outcome to come (over real libotr SMP: matching secrets, differing ones, an
// abort from either side, a session that ends, a close); cleanup calls are idempotent.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { SmpEvent } from 'protocol-otr';
import { T, closeAll, createPair, securePair } from './helpers/harness.mjs';

after(closeAll);

test('smpVerify() resolves once SMP1 is sent, and its outcome says whether the contact verified: "verified"', T, async () => {
  const pair = await securePair({ bob: { handlers: { onSmp: () => 'the blue door' } } });
  const sent = pair.alice.wire.length;
  const exchange = await pair.alice.channel.smpVerify('the blue door', 'Where did we first meet?');
  assert.ok(pair.alice.wire.length > sent, 'the first SMP message went to onWrite before the promise resolved');
  assert.equal(await exchange.outcome, 'verified');
  assert.deepEqual(pair.alice.smpEvents().at(-1), [SmpEvent.SUCCESS, 100], 'onSmpEvent says the same');
  assert.equal(pair.alice.channel.status, 'Private');
  assert.equal(pair.alice.contact.activeFingerprint.isVerified, true);
});

test('SMP with differing secrets: the outcome is "failed" on both sides (smpRespond() has one too)', T, async () => {
  const pair = await securePair({ bob: { omit: ['onSmp'] } });
  const asked = await pair.alice.channel.smpVerify('right');
  await pair.settle();
  assert.deepEqual(pair.bob.smpEvents().at(-1), [SmpEvent.ASK_FOR_SECRET, 25]);
  const answered = await pair.bob.channel.smpRespond('wrong');
  assert.deepEqual(await Promise.all([asked.outcome, answered.outcome]), ['failed', 'failed']);
  assert.equal(pair.alice.channel.status, 'Unverified');
  // And matching secrets through smpRespond: "verified" on both sides.
  const again = await pair.alice.channel.smpVerify('same');
  await pair.settle();
  const reply = await pair.bob.channel.smpRespond('same');
  assert.deepEqual(await Promise.all([again.outcome, reply.outcome]), ['verified', 'verified']);
});

test('SMP aborted by the contact, or here, or replaced by a new one: the outcome is "aborted"', T, async () => {
  const pair = await securePair({ bob: { omit: ['onSmp'] } });
  const first = await pair.alice.channel.smpVerify('never answered');
  await pair.settle();
  await pair.bob.channel.smpAbort();
  assert.equal(await first.outcome, 'aborted');
  assert.ok(pair.alice.smpEvents().some(([code]) => code === SmpEvent.ABORT));

  const second = await pair.alice.channel.smpVerify('given up');
  await pair.alice.channel.smpAbort();
  assert.equal(await second.outcome, 'aborted');

  const replaced = await pair.alice.channel.smpVerify('one');
  const replacement = await pair.alice.channel.smpVerify('two');
  assert.equal(await replaced.outcome, 'aborted');
  await pair.settle();
  await pair.bob.channel.smpRespond('two');
  assert.equal(await replacement.outcome, 'verified');
});

test('SMP whose session ends, or whose channel or OTR instance closes, before an outcome: "ended"', T, async () => {
  const pair = await securePair({ bob: { omit: ['onSmp'] } });
  const byContact = await pair.alice.channel.smpVerify('x');
  await pair.settle();
  await pair.bob.channel.finish();
  assert.equal(await byContact.outcome, 'ended');

  const other = await securePair({ bob: { omit: ['onSmp'] } });
  const byFinish = await other.alice.channel.smpVerify('x');
  await other.alice.channel.finish();
  assert.equal(await byFinish.outcome, 'ended');
  await other.alice.channel.init();
  await other.settle();
  const byRefresh = await other.alice.channel.smpVerify('x');
  await other.alice.channel.refresh();
  assert.equal(await byRefresh.outcome, 'ended');

  const third = await securePair({ bob: { omit: ['onSmp'] } });
  const byChannelClose = await third.alice.channel.smpVerify('x');
  await third.alice.channel.close();
  assert.equal(await byChannelClose.outcome, 'ended');
  const byOtrClose = await third.bob.channel.smpVerify('y');
  await third.bob.otr.close();
  assert.equal(await byOtrClose.outcome, 'ended');
});

test('channel.close() after otr.close() resolves (it rejected with ERR_OTR_CLOSED), as otr.close() twice does', T, async () => {
  const pair = await createPair();
  await pair.alice.otr.close();
  await pair.alice.otr.close();
  await pair.alice.channel.close();
  await pair.alice.channel.close();
  // While the instance is still closing, too: it resolves once the instance is closed.
  const closing = pair.bob.otr.close();
  const channelClosed = pair.bob.channel.close();
  await channelClosed;
  assert.equal(pair.bob.otr.closed, true);
  await closing;
  // A second close() of an open channel returns the first one's promise.
  const fresh = await createPair();
  const first = fresh.alice.channel.close();
  assert.equal(fresh.alice.channel.close(), first);
  await first;
});
