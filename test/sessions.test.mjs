// Instances: one contact logged in twice (two OTR instances with the same key and different
// instance tags), sessions(), currentSession and selectSession() choosing where writes go.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { MessageEvent, Instag } from 'protocol-otr';
import { ALICE, BOB, T, keys, cloneDir, closeAll, Net, senderInstag } from './helpers/harness.mjs';

after(closeAll);

async function threeParties() {
  const k = await keys();
  const net = new Net();
  const alice = await net.addParty('alice', { dir: cloneDir(k.aliceDir), account: ALICE, contact: BOB });
  // Two devices of bob: same key file, each its own instance tag.
  const bobDir = cloneDir(k.bobDir, { without: ['otr.instance_tags'] });
  const bob2Dir = cloneDir(k.bobDir, { without: ['otr.instance_tags'] });
  const bob1 = await net.addParty('bob1', { dir: bobDir, account: BOB, contact: ALICE });
  const bob2 = await net.addParty('bob2', { dir: bob2Dir, account: BOB, contact: ALICE });
  // The server hands alice's messages to every device of bob; both devices write to alice.
  alice.peers = [bob1, bob2];
  bob1.peers = [alice];
  bob2.peers = [alice];
  net.alice = alice;
  net.bob = bob1;
  return { net, alice, bob1, bob2 };
}

test('two instances of one contact: both sessions listed, each selectable, writes go to the selected one', T, async () => {
  const { net, alice, bob1, bob2 } = await threeParties();
  await alice.channel.init();
  await net.settle();
  assert.equal(bob1.channel.status, 'Unverified');
  assert.equal(bob2.channel.status, 'Unverified');

  const tag1 = bob1.wire.map(senderInstag).find(Boolean);
  const tag2 = bob2.wire.map(senderInstag).find(Boolean);
  assert.ok(tag1 && tag2 && tag1 !== tag2, `distinct instance tags ${tag1} ${tag2}`);
  assert.deepEqual([...alice.channel.sessions()].sort(), [tag1, tag2].sort());
  assert.ok(alice.channel.sessions().includes(alice.channel.currentSession));

  assert.equal(await alice.channel.selectSession(tag2), true);
  assert.equal(alice.channel.currentSession, tag2);
  const e1 = bob1.mark();
  await alice.channel.write('for device two');
  await net.settle();
  assert.deepEqual(bob2.received, ['for device two']);
  assert.deepEqual(bob1.received, []);
  assert.ok(
    bob1.since(e1).some((c) => c.name === 'onEvent' && c.args[0] === MessageEvent.RCVDMSG_FOR_OTHER_INSTANCE),
    'device one is told the message was for another instance',
  );

  assert.equal(await alice.channel.selectSession(tag1), true);
  assert.equal(alice.channel.currentSession, tag1);
  await alice.channel.write('for device one');
  await net.settle();
  assert.deepEqual(bob1.received, ['for device one']);
  assert.deepEqual(bob2.received, ['for device two']);
  net.assertNoErrors();
});

test('Instag.RECENT_RECEIVED selects the instance we last heard from', T, async () => {
  const { net, alice, bob1, bob2 } = await threeParties();
  await alice.channel.init();
  await net.settle();
  const tag1 = bob1.wire.map(senderInstag).find(Boolean);
  const tag2 = bob2.wire.map(senderInstag).find(Boolean);
  await bob2.channel.write('from two');
  await net.settle();
  assert.equal(await alice.channel.selectSession(Instag.RECENT_RECEIVED), true);
  assert.equal(alice.channel.currentSession, tag2);
  await bob1.channel.write('from one');
  await net.settle();
  assert.equal(await alice.channel.selectSession(Instag.RECENT_RECEIVED), true);
  assert.equal(alice.channel.currentSession, tag1, 'the selector follows the most recent sender');
  await alice.channel.write('reply');
  await net.settle();
  assert.deepEqual(bob1.received, ['reply']);
  assert.deepEqual(alice.received, ['from two', 'from one']);
});

test('status and the fingerprint status follow the selected session', T, async () => {
  const { net, alice, bob1, bob2 } = await threeParties();
  await alice.channel.init();
  await net.settle();
  const tag1 = bob1.wire.map(senderInstag).find(Boolean);
  const tag2 = bob2.wire.map(senderInstag).find(Boolean);
  // device two ends its session (alice's session with it becomes Finished)
  await bob2.channel.finish();
  await net.settle();
  assert.equal(await alice.channel.selectSession(tag2), true);
  assert.equal(alice.channel.status, 'Finished');
  assert.equal(await alice.channel.selectSession(tag1), true);
  assert.equal(alice.channel.status, 'Unverified');
});
