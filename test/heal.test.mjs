// Conversations that heal without an operator: a contact writing into a session this side no
// longer has gets a fresh AKE started by the library (bounded, reported, never in clear), and
// init()'s outcome is not "unanswered" while the contact's AKE messages are arriving.
import { after, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageEvent, Policy } from 'protocol-otr';
import { ALICE, BOB, PROTO, T, cloneDir, closeAll, isQuery, keys, openOTR, securePair, tick, tmpdir } from './helpers/harness.mjs';

after(closeAll);

// The restarts a party's channel reported, recorded in its call log (for order checks).
function restartRecorder(net, name) {
  return (c, info) => net.parties[name].calls.push({ name: 'onSessionRestart', args: [info], channel: c, seq: net.seq++ });
}

// bob's process ends and starts again: a fresh OTR over the same files (same key, same
// instance tag), its sessions gone. Wired to alice in place of the old bob.
let restarts = 0;
async function restartBob(net, { channel = {}, otrOptions } = {}) {
  const old = net.bob;
  await old.otr.close();
  old.closed = true;
  const name = `bob, restart ${++restarts}`;
  const bob = await net.addParty(name, {
    dir: old.dir,
    account: BOB,
    contact: ALICE,
    otrOptions,
    channel: { onSessionRestart: restartRecorder(net, name), ...channel },
  });
  net.alice.peers = [bob];
  bob.peers = [net.alice];
  net.bob = bob;
  return bob;
}

// A v3 DH-Key with the right instance tags and a made-up public value: libotr ignores it when
// no AKE of its waits for a DH-Key.
function strayDhKey(from, to) {
  const gy = Buffer.alloc(192, 0x5a);
  const message = Buffer.alloc(2 + 1 + 4 + 4 + 4 + gy.length);
  let at = message.writeUInt16BE(3, 0);
  at = message.writeUInt8(0x0a, at);
  at = message.writeUInt32BE(from, at);
  at = message.writeUInt32BE(to, at);
  at = message.writeUInt32BE(gy.length, at);
  gy.copy(message, at);
  return `?OTR:${message.toString('base64')}.`;
}

// Waits, turn by turn of the event loop, until `check()` holds (what it waits for is an event
// the addon delivers; the test's own timeout bounds it).
async function until(check) {
  while (!check()) await tick();
}

for (const [version, policy] of [
  ['OTR v3', undefined],
  ['OTR v2 (as profanity speaks it)', Policy.ALLOW_V2 | Policy.WHITESPACE_START_AKE | Policy.ERROR_START_AKE],
]) {
  test(
    `a contact that writes into a session this side lost to a restart gets a fresh AKE started by the library, and its next write arrives encrypted (${version})`,
    T,
    async () => {
      const net = await securePair({ alice: { policy } });
      const bob = await restartBob(net);
      assert.equal(bob.channel.status, 'Not private', 'the restarted side has no session');

      await net.alice.channel.write('into the old session');
      await net.settle();
      net.assertNoErrors();
      assert.deepEqual(bob.events(), [MessageEvent.RCVDMSG_NOT_IN_PRIVATE], 'the lost message is still reported');
      const restarts = bob.args('onSessionRestart');
      assert.equal(restarts.length, 1, 'one restart');
      assert.deepEqual(restarts[0][0], { reason: 'lost-session', instag: policy === undefined ? net.alice.account.instanceTag : 0 });
      // In order: the event, the restart, then the query that starts the AKE.
      assert.deepEqual(bob.names(['onEvent', 'onSessionRestart', 'onWrite']).slice(0, 3), ['onEvent', 'onSessionRestart', 'onWrite']);
      assert.ok(isQuery(bob.wire[0]), `the restart sends a query: ${bob.wire[0]}`);
      assert.ok(
        bob.wire.every((m) => m.startsWith('?OTR')),
        'nothing in clear',
      );
      assert.equal(bob.count('onGoneSecure'), 1);
      assert.equal(bob.channel.status, 'Unverified');
      assert.equal(net.alice.channel.status, 'Unverified');

      await net.alice.channel.write('after the restart');
      await net.settle();
      assert.deepEqual(bob.received, ['after the restart']);
      assert.equal(bob.args('onRead')[0][1].encrypted, true);
      await bob.channel.write('and back');
      await net.settle();
      assert.deepEqual(net.alice.received.at(-1), 'and back');
      assert.equal(net.alice.args('onRead').at(-1)[1].encrypted, true);
      net.assertNoErrors();
    },
  );
}

test('what the contact writes while the healing AKE is under way does not restart it again', T, async () => {
  const net = await securePair();
  const bob = await restartBob(net);
  const { alice } = net;
  // alice's user keeps typing: a line goes out right after her DH-Commit, still in the old session.
  let typed = false;
  alice.filter = (m) => {
    if (!typed && m.startsWith('?OTR:AAMC')) {
      typed = true;
      alice.channel.write('typed during the AKE');
    }
    return m;
  };
  await alice.channel.write('one');
  await alice.channel.write('two');
  await net.settle();
  net.assertNoErrors();
  assert.ok(typed);
  assert.equal(bob.events().filter((e) => e === MessageEvent.RCVDMSG_NOT_IN_PRIVATE).length, 3, 'three lines lost');
  assert.equal(bob.args('onSessionRestart').length, 1, 'one restart');
  assert.equal(bob.wire.filter(isQuery).length, 1);
  assert.equal(bob.channel.status, 'Unverified');
  await alice.channel.write('three');
  await net.settle();
  assert.deepEqual(bob.received, ['three']);
});

test('a tombstoned contact (Finished) that writes encrypted data is restarted into a new session; its writes are never sent in clear', T, async () => {
  const net = await securePair();
  const { alice, bob } = net;
  // bob's channel is closed and opened again: the contact was private, so it comes back Finished.
  await bob.channel.close();
  bob.channel = bob.contact.channel({ queryRetries: 0, onSessionRestart: restartRecorder(net, 'bob'), ...bob.callbacks() });
  await until(() => bob.channel.status === 'Finished');
  const mark = bob.mark();
  await bob.channel.write('refused while Finished');
  assert.deepEqual(bob.wireSince(mark), [], 'a write to a Finished contact sends nothing');
  assert.deepEqual(bob.args('onEvent').at(-1), [MessageEvent.CONNECTION_ENDED, 'refused while Finished']);

  await alice.channel.write('into the old session');
  await net.settle();
  net.assertNoErrors();
  assert.equal(bob.args('onSessionRestart').length, 1);
  assert.equal(bob.channel.status, 'Unverified');
  for (const m of bob.wireSince(mark)) assert.ok(m.startsWith('?OTR'), `nothing in clear: ${m.slice(0, 40)}`);
  await alice.channel.write('after the restart');
  await bob.channel.write('reply');
  await net.settle();
  assert.deepEqual(bob.received.at(-1), 'after the restart');
  assert.equal(alice.received.at(-1), 'reply');
  assert.equal(alice.args('onRead').at(-1)[1].encrypted, true);
});

test(
  'a write made while the lost session heals waits for the new session (never in clear); a query of ours already out is not doubled by a restart',
  T,
  async () => {
    const net = await securePair();
    const restarted = [];
    const bob = await restartBob(net, {
      channel: {
        policy: Policy.ALWAYS,
        // bob's user answers the moment the restart is reported: the write is held for the AKE.
        onSessionRestart: (c, info) => {
          restarted.push(info);
          c.write('written while healing');
        },
      },
    });
    await net.alice.channel.write('into the old session');
    await net.settle();
    net.assertNoErrors();
    assert.equal(restarted.length, 1);
    assert.deepEqual(net.alice.received, ['written while healing']);
    assert.equal(net.alice.args('onRead')[0][1].encrypted, true);
    assert.ok(!bob.wire.some((m) => m.includes('healing')), 'never in clear');

    // After a takeover the new owner calls init() itself; the contact's message into the old
    // session arrives before its answer to that query: no second query.
    const carol = await restartBob(net);
    net.alice.pause();
    await carol.channel.init();
    await net.alice.channel.write('into the old session again');
    await net.settle();
    assert.deepEqual(carol.events(), [MessageEvent.RCVDMSG_NOT_IN_PRIVATE]);
    net.alice.resume();
    await net.settle();
    net.assertNoErrors();
    assert.equal(carol.args('onSessionRestart').length, 0, "init()'s query was out");
    assert.equal(carol.wire.filter(isQuery).length, 1);
    assert.equal(carol.channel.status, 'Unverified');
  },
);

test("a lost session is left alone with restartLostSessions: false, and after this side's own finish()", T, async () => {
  const net = await securePair();
  const bob = await restartBob(net, { channel: { restartLostSessions: false } });
  assert.equal(bob.channel.restartLostSessions, false);
  await net.alice.channel.write('into the old session');
  await net.settle();
  assert.deepEqual(bob.events(), [MessageEvent.RCVDMSG_NOT_IN_PRIVATE]);
  assert.equal(bob.args('onSessionRestart').length, 0);
  assert.deepEqual(bob.wire, []);
  assert.equal(bob.channel.status, 'Not private');

  // bob's user ends the session while alice's message is on its way: the message arrives
  // after the end, and the session stays ended (the user's decision), not restarted.
  const ended = [];
  const pair = await securePair({ bob: { channel: { onSessionRestart: (c, info) => ended.push(info) } } });
  assert.equal(pair.bob.channel.restartLostSessions, true, 'on by default');
  pair.bob.pause();
  pair.alice.pause();
  await pair.alice.channel.write('crossing the end');
  await pair.bob.channel.finish();
  pair.bob.resume();
  await pair.settle();
  pair.alice.resume();
  await pair.settle();
  pair.assertNoErrors();
  assert.deepEqual(pair.bob.events(), [MessageEvent.RCVDMSG_NOT_IN_PRIVATE]);
  assert.deepEqual(ended, []);
  assert.equal(pair.bob.wire.filter(isQuery).length, 0, 'no query: the user ended the session');
  assert.equal(pair.bob.channel.status, 'Not private');
  assert.equal(pair.alice.channel.status, 'Finished');
});

// A contact that keeps writing into a lost session, or floods us with undecryptable data, gets
// bounded replies: one restart while it has not answered the last (or while an AKE with it is
// under way), at most three per key-work window, each within its budget.
test(
  'a flood of 1,000 undecryptable data messages gets one restart; each answered by a stray AKE message, at most three per window within the budget',
  T,
  async () => {
    const net = await securePair();
    const { alice } = net;
    alice.deliver = false; // captured, not delivered: this is the flood
    const mark = alice.mark();
    for (let i = 0; i < 1000; i++) await alice.channel.write(`flood ${i}`);
    const flood = alice.wireSince(mark);
    assert.equal(flood.length, 1000);

    const window = 3_600_000; // no window ends during the test: the bound does not depend on time
    const bob = await restartBob(net, { otrOptions: { keyWorkWindow: window } });
    bob.deliver = false;
    await Promise.all(flood.map((m) => bob.channel.read(m)));
    assert.equal(bob.events().filter((e) => e === MessageEvent.RCVDMSG_NOT_IN_PRIVATE).length, 1000, 'each one reported');
    assert.equal(bob.args('onSessionRestart').length, 1, 'one restart while it has not answered');
    assert.equal(bob.wire.filter(isQuery).length, 1);

    // Now each data message follows a stray DH-Key of the contact's, which libotr ignores (no AKE
    // waits for it) but which answers the last restart's query. Restarts stop at three per window
    // (a budget of 30), or when the budget is spent: each stray message and each restart costs one
    // (a budget of 4: two of each). Nothing else is sent back.
    for (const [budget, expected] of [
      [30, 3],
      [4, 2],
    ]) {
      const carol = await restartBob(net, { otrOptions: { keyWorkWindow: window, maxKeyWorkPerContact: budget } });
      carol.deliver = false;
      const stray = strayDhKey(alice.account.instanceTag, carol.account.instanceTag);
      const reads = [];
      for (const m of flood) reads.push(carol.channel.read(stray), carol.channel.read(m));
      await Promise.all(reads);
      assert.equal(carol.args('onSessionRestart').length, expected, `restarts with a budget of ${budget}`);
      assert.equal(carol.wire.filter(isQuery).length, expected);
      assert.equal(carol.wire.length, expected, 'nothing else sent back');
      assert.equal(carol.events().filter((e) => e === MessageEvent.RCVDMSG_GENERAL_ERR).length, 1, 'the budget ran out, said once');
    }
  },
);

// A contact that makes its key on demand (as irssi does: the first query starts its key
// generation and goes unanswered) answers a later query, and its AKE takes a while (its client
// paces lines, or finishes its key first). The retry timer runs on Node's mock clock: the test
// decides when each deadline passes, relative to the AKE messages.
test('onQueryResult does not report "unanswered" while the contact\'s AKE messages are arriving; a stalled AKE is given up after 60 s', T, async (t) => {
  const k = await keys();
  const A = openOTR(cloneDir(k.aliceDir));
  const B = openOTR(tmpdir('otr-keyless-')); // bob has no key yet
  const alice = await A.account(ALICE, PROTO);
  const order = [];
  const toBob = [];
  const toAlice = [];
  const aliceReads = [];
  const interval = 10_000;
  const channel = (await alice.contact(BOB)).channel({
    queryRetryInterval: interval, // the defaults, said explicitly
    queryRetries: 2,
    onWrite: (c, m) => toBob.push(m),
    onRead: () => {},
    onGoneSecure: () => order.push('private'),
    onQueryResult: (c, { secure, queries }) => order.push(secure ? `secure after ${queries}` : `unanswered after ${queries}`),
  });
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const elapse = async (ms) => {
    mock.timers.tick(ms);
    await tick();
  };
  const read = (m) => {
    const r = channel.read(m);
    aliceReads.push(r);
    return r;
  };

  await channel.init();
  assert.equal(toBob.filter(isQuery).length, 1);
  // bob's client starts making its key: the query that asked goes unanswered.
  const bobKey = B.account(BOB, PROTO);
  toBob.length = 0;
  await elapse(interval);
  await until(() => toBob.length === 1);
  assert.ok(isQuery(toBob[0]), 'second query');
  toBob.length = 0; // still making its key
  await elapse(interval);
  await until(() => toBob.length === 1);
  assert.ok(isQuery(toBob[0]), 'third and last query');

  // bob has its key now, and answers the last query.
  const bobAccount = await bobKey;
  const bobChannel = (await bobAccount.contact(ALICE)).channel({ queryRetries: 0, onWrite: (c, m) => toAlice.push(m), onRead: () => {} });
  await bobChannel.read(toBob.shift());
  assert.equal(toAlice.length, 1, 'bob answers with a DH-Commit');
  await read(toAlice.shift());
  await until(() => toBob.length === 1); // alice's DH-Key
  await bobChannel.read(toBob.shift());
  await until(() => toAlice.length >= 1); // bob's Reveal Signature: it is slow to arrive
  const revealSignature = toAlice.splice(0);

  // Deadlines pass while the Reveal Signature is on its way.
  await elapse(interval);
  await elapse(interval);
  await elapse(interval);
  assert.deepEqual(order, [], 'no outcome while the AKE is under way');
  for (const m of revealSignature) await read(m);
  await until(() => order.length === 2);
  assert.deepEqual(order, ['private', 'secure after 3']);
  assert.equal(channel.status, 'Unverified');
  await Promise.all(aliceReads);

  // A stalled AKE: the contact answers the last query of a new init() with a DH-Commit, then
  // nothing. The outcome waits while the AKE could still complete (libotr gives an AKE 60 s
  // from its last message), not longer.
  await channel.finish();
  order.length = 0;
  toBob.length = 0;
  await channel.init();
  toBob.length = 0; // bob ignores the first two queries
  await elapse(interval);
  await until(() => toBob.length === 1);
  toBob.length = 0;
  await elapse(interval);
  await until(() => toBob.length === 1);
  await bobChannel.read(toBob.shift());
  await read(toAlice.splice(0)[0]); // the DH-Commit; alice answers, bob never goes on
  await until(() => toBob.length === 1);
  const quietIntervals = 60_000 / interval;
  for (let n = 0; n < quietIntervals; n++) await elapse(interval); // the first one was not quiet
  assert.deepEqual(order, [], 'still waiting for the AKE');
  await elapse(interval);
  await until(() => order.length === 1);
  assert.deepEqual(order, ['unanswered after 3']);
  await Promise.all(aliceReads);
});
