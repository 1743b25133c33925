// What one contact can make the library keep: at most 32 instance sessions and one more in
// an AKE (the idlest unencrypted one makes room for a new one) and at most 1 MiB of a message being
// reassembled from fragments. A flood of either never touches an encrypted session.
import assert from 'node:assert/strict';
import test from 'node:test';
import { MessageEvent } from 'protocol-otr';
import { T, closeAll, securePair } from './helpers/harness.mjs';

test.after(closeAll);

const decode = (wire) => Buffer.from(/^\?OTR:([A-Za-z0-9+/=]+)\./.exec(wire)[1], 'base64');
const encode = (bytes) => `?OTR:${bytes.toString('base64')}.`;

// A real DH-commit addressed to alice: bob's answer to a query from alice.
async function dhCommitFor(pair) {
  const { alice, bob } = pair;
  alice.pause();
  const m = bob.mark();
  await bob.channel.read(`?OTRv3?`);
  const commit = bob
    .wireSince(m)
    .map(decode)
    .find((bytes) => bytes[2] === 0x02);
  alice.take();
  alice.resume();
  assert.ok(commit, 'bob answered the query with a DH-commit');
  return commit;
}

test('a flood of new instance tags keeps at most 32 sessions per contact, and the encrypted one survives', T, async () => {
  // The contact's key-work budget would stop the flood first (see the amplification tests):
  // raised here to show the bound on sessions.
  const pair = await securePair({ alice: { otrOptions: { maxKeyWorkPerContact: 100_000 } } });
  const { alice, bob } = pair;
  const encrypted = alice.channel.currentSession;
  const commit = await dhCommitFor(pair);
  alice.pause(); // alice's DH-key answers go nowhere
  for (let i = 0; i < 300; i++) {
    const forged = Buffer.from(commit);
    forged.writeUInt32BE(0x10000 + i, 3); // sender instance tag
    await alice.channel.read(encode(forged));
  }
  alice.take();
  alice.resume();
  const sessions = alice.channel.sessions();
  // 32, and one more while its AKE has not completed (it may replace an encrypted one then).
  assert.ok(sessions.length <= 33, `${sessions.length} sessions kept`);
  assert.ok(sessions.includes(encrypted), 'the encrypted session was not forgotten');
  assert.ok(sessions.includes(0x10000 + 299), 'the newest instance has its session');
  assert.ok(!sessions.includes(0x10000), 'the oldest half-open one made room');

  assert.equal(await alice.channel.selectSession(encrypted), true);
  await bob.channel.write('still private');
  await pair.settle();
  assert.deepEqual(alice.received.slice(-1), ['still private']);
  assert.equal(alice.channel.status, 'Unverified');
});

test('a message reassembled from fragments is dropped past 1 MiB, with an event, and the session goes on', T, async () => {
  const pair = await securePair();
  const { alice, bob } = pair;
  const ours = alice.account.instanceTag.toString(16).padStart(8, '0');
  const theirs = bob.account.instanceTag.toString(16).padStart(8, '0');
  const piece = 'A'.repeat(4000);
  const before = alice.events().length;
  for (let k = 1; k <= 300; k++) {
    // One message announced as 65,535 fragments that keeps growing: 1.2 MB by the end.
    await alice.channel.read(`?OTR|${theirs}|${ours},${String(k).padStart(5, '0')},65535,${piece},`);
  }
  const dropped = alice
    .args('onEvent')
    .slice(before)
    .filter(([code]) => code === MessageEvent.RCVDMSG_GENERAL_ERR);
  assert.ok(dropped.length >= 1, 'the oversized message was reported');
  assert.match(dropped[0][1], /more than maxFragmentedSize \(1048576\)/);
  assert.equal(alice.received.length, 0, 'nothing reached onRead');

  await bob.channel.write('after the flood');
  await pair.settle();
  assert.deepEqual(alice.received, ['after the flood']);
});
