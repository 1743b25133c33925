// onTimer / ping(): libotr's poll timer, and the library's own timer when onTimer is absent.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { T, REPO, keys, cloneDir, closeAll, createPair, securePair } from './helpers/harness.mjs';

after(closeAll);

const CHILD = path.join(REPO, 'test', 'helpers', 'half-ake-child.mjs');

test('onTimer: sending a v3 D-H commit makes libotr ask for its poll timer (70 s) on that channel', T, async () => {
  const pair = await createPair();
  await pair.alice.channel.init();
  await pair.settle();
  const calls = pair.bob.calls.filter((c) => c.name === 'onTimer');
  assert.ok(calls.length >= 1, 'bob (who sent the commit) was asked for a timer');
  assert.deepEqual(calls[0].args, [70]);
  assert.equal(calls[0].channel, pair.bob.channel);
});

test('onTimer interval 0: ping() with nothing left to wait for stops the timer', T, async () => {
  const pair = await securePair();
  const m = pair.alice.mark();
  await pair.alice.channel.ping();
  const timer = pair.alice.since(m).filter((c) => c.name === 'onTimer');
  assert.deepEqual(
    timer.map((c) => c.args),
    [[0]],
  );
  assert.equal(timer[0].channel, pair.alice.channel);
});

test('ping() while an AKE commit is still fresh does not stop the timer', T, async () => {
  const pair = await createPair();
  await pair.alice.channel.init();
  await pair.settle();
  const m = pair.bob.mark();
  await pair.bob.channel.ping();
  assert.deepEqual(
    pair.bob
      .since(m)
      .filter((c) => c.name === 'onTimer')
      .map((c) => c.args),
    [],
  );
});

test('without onTimer, ping() still works and the channel works', T, async () => {
  const pair = await createPair({ alice: { omit: ['onTimer'] }, bob: { omit: ['onTimer'] } });
  await pair.alice.channel.init();
  await pair.settle();
  await pair.alice.channel.ping();
  await pair.bob.channel.ping();
  await pair.alice.channel.write('timerless');
  await pair.settle();
  assert.deepEqual(pair.bob.received, ['timerless']);
  pair.assertNoErrors();
});

function runChild(mode) {
  return keys().then((k) => {
    const r = spawnSync(process.execPath, [CHILD, cloneDir(k.aliceDir), cloneDir(k.bobDir), mode], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 60_000,
    });
    return r;
  });
}

test('without onTimer the library keeps its own timer, which does not keep the process alive', T, async () => {
  const r = await runChild('no-timer');
  assert.equal(r.error?.code, undefined, `child did not exit by itself: ${r.error?.message}`);
  assert.equal(r.signal, null, 'child was not killed');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /half-ake no-timer/);
});

test('the half-finished AKE in that child did ask for a timer (control run with onTimer)', T, async () => {
  const r = await runChild('with-timer');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /half-ake with-timer timers=\[70\]/);
});
