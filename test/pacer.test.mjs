// The Pacer under a flood (issue: hostile contacts, wave 2, finding 4): targets take turns, one
// line each per round, and the queues are bounded, with what is dropped counted and reported.
// No assertion depends on the clock: a pacer either has a rate so slow that nothing but its
// burst goes out while the test runs (a token every 11 days), or is fed from inside its own
// send() (where nothing else goes out meanwhile), or is held to a bound that must hold
// whenever its tokens come.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Pacer } from 'protocol-otr';
import { ALICE, PROTO, T, closeAll, cloneDir, keys, openOTR, tick } from './helpers/harness.mjs';

// Every pacer is closed at the end, so a failed assertion leaves no timer holding the process.
const pacers = [];
function pacerOf(options) {
  const pacer = new Pacer(options);
  pacers.push(pacer);
  return pacer;
}
after(async () => {
  for (const pacer of pacers) pacer.close();
  await closeAll();
});

const FROZEN = 1e-6; // lines per second: after the burst, nothing more goes out during a test

// A bridge over real libotr whose every wire message goes through `pacer`, for its contact,
// and which echoes back everything mallory says (as a relay answers what it is sent).
async function echoBridge(pacer) {
  const k = await keys();
  const otr = openOTR(cloneDir(k.aliceDir));
  const account = await otr.account(ALICE, PROTO);
  const pushed = { mallory: 0, bob: 0 };
  const echoes = [];
  const router = account.router({
    onWrite: (c, message) => {
      pushed[c.contact.name]++;
      pacer.push(message, c.contact.name);
    },
    onRead: (c, message) => {
      if (c.contact.name === 'mallory') echoes.push(router.write('mallory', `echo: ${message}`));
    },
  });
  return {
    pushed,
    // mallory's flood: `count` plaintext messages, each echoed; resolves once every echo is written.
    async flood(count) {
      await Promise.all(Array.from({ length: count }, (_, i) => router.read('mallory', `spam ${i}`)));
      await Promise.all(echoes);
    },
    write: (name, text) => router.write(name, text),
  };
}

test("one target's flood delays another target's line by at most one round", T, async () => {
  // The order the algorithm gives, exactly: a burst of 3, then 1,000 lines for mallory, the
  // connection's own JOIN, three lines for alice and one for bob. close() hands back what is
  // still queued in the order it would have been sent.
  const sent = [];
  const frozen = pacerOf({ linesPerSecond: FROZEN, burst: 3, send: (line) => sent.push(line) });
  for (let i = 0; i < 1000; i++) frozen.push(`m${i}`, 'mallory');
  frozen.push('JOIN #room');
  for (let i = 0; i < 3; i++) frozen.push(`a${i}`, 'alice');
  frozen.push('b0', 'bob');
  assert.deepEqual(sent, ['m0', 'm1', 'm2'], 'the burst went at once');
  assert.equal(frozen.depth, 997 + 1 + 3 + 1);
  // Round 1: mallory, the own lane, alice, bob (the order their lanes joined); then mallory
  // and alice take turns until alice is done; then mallory's lines, in order.
  assert.deepEqual(frozen.close(), ['m3', 'JOIN #room', 'a0', 'b0', 'm4', 'a1', 'm5', 'a2', ...Array.from({ length: 994 }, (_, i) => `m${i + 6}`)]);

  // The same bound on real sends, whenever the bucket's tokens come: between a line's push and
  // its send, no other lane sends more than one line per line its own lane had waiting, plus one.
  const lines = [];
  const pushedAt = new Map();
  const waiting = new Map();
  let pacer;
  const push = (line, target) => {
    const lane = target ?? '(own)';
    pushedAt.set(line, { at: lines.length, lane, ahead: waiting.get(lane) ?? 0 });
    waiting.set(lane, (waiting.get(lane) ?? 0) + 1);
    pacer.push(line, target);
  };
  pacer = pacerOf({
    linesPerSecond: 1000,
    burst: 10,
    maxDepthPerTarget: 10_000,
    send: (line) => {
      lines.push(line);
      const lane = pushedAt.get(line).lane;
      waiting.set(lane, waiting.get(lane) - 1);
      // A target that starts talking while the flood drains: pushed from inside a send.
      if (line === 'm100') push('c0', 'carol');
    },
  });
  for (let i = 0; i < 1000; i++) push(`m${i}`, 'mallory');
  push('JOIN #room');
  for (let i = 0; i < 3; i++) push(`a${i}`, 'alice');
  push('b0', 'bob');
  assert.ok(pacer.depth > 100, `the flood waits: ${pacer.depth} lines queued`);
  await pacer.drained();
  assert.equal(lines.length, 1006, 'every line was sent');
  for (const [line, { at, lane, ahead }] of pushedAt) {
    const sentAt = lines.indexOf(line);
    const before = new Map();
    for (const other of lines.slice(at, sentAt)) {
      const otherLane = pushedAt.get(other).lane;
      if (otherLane !== lane) before.set(otherLane, (before.get(otherLane) ?? 0) + 1);
    }
    for (const [otherLane, count] of before) {
      assert.ok(count <= ahead + 1, `${line} (${ahead} of its lane ahead) waited behind ${count} lines of ${otherLane}`);
    }
  }
  // Every target's lines in the order they were pushed.
  assert.deepEqual(
    lines.filter((l) => l.startsWith('m')),
    Array.from({ length: 1000 }, (_, i) => `m${i}`),
  );
  assert.deepEqual(
    lines.filter((l) => l.startsWith('a')),
    ['a0', 'a1', 'a2'],
  );
  assert.equal(pacer.sent, 1006);
  assert.equal(pacer.depth, 0);

  // The finding over real libotr: a bridge echoing a 2,000-message flood from mallory, then
  // writing to bob. Ahead of bob's line: one of mallory's, not all of them.
  const bridgePacer = pacerOf({ linesPerSecond: FROZEN, burst: 1, maxDepthPerTarget: 10_000, send: () => {} });
  const bridge = await echoBridge(bridgePacer);
  await bridge.flood(2000);
  await bridge.write('bob', 'hello bob');
  assert.equal(bridge.pushed.mallory, 2000);
  assert.equal(bridgePacer.depth, 2000, 'the flood waits (one of its lines went with the burst)');
  const order = bridgePacer.close();
  const bobAt = order.findIndex((line) => line.includes('hello bob'));
  assert.equal(bobAt, 1, `bob's line is sent after ${bobAt} of mallory's lines`);
});

test("the pacer's queue is bounded; what is dropped is counted and reported", T, async () => {
  // Over real libotr with the default bounds: mallory's 2,000 echoes cannot fill the queue.
  const bridgePacer = pacerOf({ linesPerSecond: FROZEN, burst: 1, send: () => {} });
  const bridgeDrops = [];
  bridgePacer.on('drop', (report) => bridgeDrops.push(report));
  const bridge = await echoBridge(bridgePacer);
  await bridge.flood(2000);
  await bridge.write('bob', 'hello bob');
  await tick();
  assert.equal(bridge.pushed.mallory, 2000);
  assert.equal(bridgePacer.depth, 1000 + 1, "mallory's 1,000 lines (the default bound) and bob's");
  assert.equal([bridgePacer.maxDepth, bridgePacer.maxDepthPerTarget].join(), '20000,1000');
  assert.equal(bridgePacer.depthOf('mallory'), 1000, 'mallory holds at most maxDepthPerTarget lines');
  assert.equal(bridgePacer.depthOf('bob'), 1, "bob's line is not dropped for mallory's flood");
  assert.equal(bridgePacer.dropped, 2000 - 1 - 1000);
  assert.ok(bridgeDrops.length >= 1, 'the overflow was reported while it lasted');
  const left = bridgePacer.close();
  assert.ok(left.some((line) => line.includes('hello bob')));
  assert.ok(bridgeDrops.length <= 2, `one overflow, at most two reports: ${JSON.stringify(bridgeDrops)}`);
  assert.ok(bridgeDrops.every((d) => d.target === 'mallory'));
  assert.equal(
    bridgeDrops.reduce((n, d) => n + d.dropped, 0),
    999,
    'the reports add up to what was dropped',
  );

  // The newest line of the target is dropped, the push says so, and reports come per overflow,
  // not per line: 200 more drops over 200 turns of the event loop make no event.
  const sent = [];
  const drops = [];
  const pacer = pacerOf({ linesPerSecond: FROZEN, burst: 1, maxDepth: 8, maxDepthPerTarget: 5, send: (line) => sent.push(line) });
  pacer.on('drop', (report) => drops.push(report));
  const accepted = Array.from({ length: 10 }, (_, i) => pacer.push(`m${i}`, 'mallory'));
  assert.deepEqual(accepted, [true, true, true, true, true, true, false, false, false, false]);
  assert.deepEqual(sent, ['m0']);
  assert.equal(pacer.depth, 5);
  assert.equal(pacer.dropped, 4);
  assert.deepEqual(drops, [], 'reported on the next turn, not from inside push()');
  await tick();
  assert.deepEqual(drops, [{ target: 'mallory', dropped: 4 }]);
  for (let i = 10; i < 210; i++) {
    assert.equal(pacer.push(`m${i}`, 'mallory'), false);
    await tick();
  }
  assert.equal(drops.length, 1, 'no event per dropped line');
  // The total bound: three more lines fit (alice's), then a line for any target is dropped,
  // the connection's own included, without touching what others queued.
  assert.equal(pacer.push('a0', 'alice'), true);
  assert.equal(pacer.push('a1', 'alice'), true);
  assert.equal(pacer.push('PONG'), true);
  assert.equal(pacer.depth, 8);
  assert.equal(pacer.push('b0', 'bob'), false);
  assert.equal(pacer.push('JOIN #room'), false);
  await tick();
  assert.deepEqual(drops.slice(1), [
    { target: 'bob', dropped: 1 },
    { target: undefined, dropped: 1 },
  ]);
  assert.equal(pacer.dropped, 4 + 200 + 2);
  // close() returns what was kept (the oldest of each target) and reports the rest.
  assert.deepEqual(pacer.close(), ['m1', 'a0', 'PONG', 'm2', 'a1', 'm3', 'm4', 'm5']);
  assert.deepEqual(drops.slice(3), [{ target: 'mallory', dropped: 200 }]);
  assert.equal(
    drops.reduce((n, d) => n + d.dropped, 0),
    pacer.dropped,
  );

  // An overflow ends when its target's queue empties: each flood of a draining pacer is
  // reported once, with its count. (Each flood is pushed from inside a send, where the pacer
  // sends nothing more until its loop resumes, so what fits does not depend on the clock.)
  const draining = pacerOf({
    linesPerSecond: 1000,
    maxDepthPerTarget: 5,
    send: (line) => {
      if (line.startsWith('flood')) for (let i = 0; i < 100; i++) draining.push(`m${i}`, 'mallory');
    },
  });
  const drainDrops = [];
  draining.on('drop', (report) => drainDrops.push(report));
  for (let round = 0; round < 2; round++) {
    draining.push(`flood ${round}`);
    await draining.drained();
    await tick();
  }
  assert.deepEqual(drainDrops, [
    { target: 'mallory', dropped: 95 },
    { target: 'mallory', dropped: 95 },
  ]);
  assert.equal(draining.sent, 12);
  assert.equal(draining.dropped, 190);

  // The caller's mistakes still throw, with a code.
  assert.throws(() => pacer.push('late', 'alice'), { code: 'ERR_OTR_INVALID_ARGUMENT' });
  for (const bad of [{ maxDepth: 0 }, { maxDepthPerTarget: -1 }, { maxDepth: 1.5 }, { maxDepthPerTarget: '5' }]) {
    assert.throws(() => new Pacer({ linesPerSecond: 1, send() {}, ...bad }), { code: 'ERR_OTR_INVALID_ARGUMENT' }, JSON.stringify(bad));
  }
  assert.throws(() => draining.push('line', null), { code: 'ERR_OTR_INVALID_ARGUMENT' });
  assert.throws(() => draining.push(42, 'alice'), { code: 'ERR_OTR_INVALID_ARGUMENT' });
});
