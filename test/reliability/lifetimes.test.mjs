// Issue 4, item 3 — lifetimes: close() with every kind of work in flight, an OTR collected
// without close(), the addon in a worker thread terminated mid-work, process exit with work
// in flight, callbacks that throw, callbacks that call back in. No crash, no callback after
// close() resolved, later calls reject with ERR_OTR_CLOSED.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { MessageEvent, OtrError, SmpEvent } from 'protocol-otr';
import {
  CHILDREN,
  LONG,
  Net,
  PROTO,
  assertCleanExit,
  closeAll,
  filesIn,
  makeSecure,
  rejectsCode,
  runNode,
  tick,
  tmpdir,
  twoInstances,
  writeKeyFile,
} from '../helpers/harness.mjs';

const T = { timeout: 240_000 };
after(closeAll);

// Three round trips through another, still open instance: each resolves in a poll phase of
// the event loop, where anything the closed instance's jobs had posted would have been
// delivered too. (close() waits until none of its jobs runs or is queued on the pool and aborts
// its delivery function before it resolves, so there is nothing left to post; this checks it
// without waiting on a clock.)
let witnessCount = 0;
async function quiet(openInstance) {
  const account = openInstance.accounts()[0];
  for (let i = 0; i < 3; i++) {
    await account.contact(`witness-${witnessCount++}@example.org`);
    await tick();
  }
}

test('close() while keygen, AKE, SMP and 1,000 writes are in flight: settles, nothing fires afterwards, later calls reject', T, async () => {
  const { A, B } = await twoInstances({ alice: ['alice@example.org'], bob: ['bob@example.org', 'carol@example.org'] });
  const link = new Net({ manual: true });
  const { a, b } = await link.connect(A, 'alice@example.org', B, 'bob@example.org', {}, { onSmp: () => 'secret' });
  const { a: a2, b: c2 } = await link.connect(A, 'alice@example.org', B, 'carol@example.org');
  await makeSecure(link, a, b);

  // AKE half done with carol: her DH-key message is waiting to be read by alice.
  await c2.channel.init(); // query → alice
  await a2.channel.read(a2.inbox.shift()); // DH-commit → carol
  await c2.channel.read(c2.inbox.shift()); // DH-key → alice
  const akeMessages = a2.inbox.splice(0);
  assert.ok(akeMessages.length > 0, 'carol answered with a DH-key message');

  // SMP half done with bob: bob's SMP2 is waiting to be read by alice.
  await a.channel.smpVerify('secret'); // SMP1 → bob
  await b.channel.read(b.inbox.shift()); // onSmp answers: SMP2 → alice
  const smpReplies = a.inbox.splice(0);
  assert.ok(smpReplies.length > 0, 'bob answered SMP1');

  const inFlight = [];
  inFlight.push(A.account('newcomer@example.org', PROTO)); // key generation
  for (const m of akeMessages) inFlight.push(a2.channel.read(m)); // AKE
  for (const m of smpReplies) inFlight.push(a.channel.read(m)); // SMP
  const writes = [];
  for (let i = 0; i < 1000; i++) writes.push(a.channel.write(`in flight ${i}`));
  const closing = A.close();
  // Calls made once close() was called are refused at once.
  const refused = a.channel.write('after close() was called').then(
    () => assert.fail('a write after close() was called succeeded'),
    (e) => e,
  );
  await closing;
  a.closed = true;
  a2.closed = true;
  const settled = await Promise.allSettled([...inFlight, ...writes]);
  const refusal = await refused;
  assert.ok(refusal instanceof OtrError && refusal.code === 'ERR_OTR_CLOSED', `write after close() was called: ${refusal}`);

  // Work queued before close() was finished: every write handed over, the key generated.
  const rejected = settled.filter((s) => s.status === 'rejected');
  assert.deepEqual(
    rejected.map((s) => `${s.reason?.code} ${s.reason?.message}`),
    [],
    'work queued before close() completes',
  );
  assert.equal(settled[0].value.name, 'newcomer@example.org');
  assert.equal(a.wire.filter((m) => m.startsWith('?OTR:AAM')).length >= 1000, true, 'all 1,000 writes reached onWrite');

  // Nothing arrives after close() resolved, even with the peer still talking.
  await quiet(B);
  await rejectsCode(a.channel.read(b.wire.at(-1) ?? 'hello'), 'ERR_OTR_CLOSED', 'read after close');
  await rejectsCode(a.channel.write('x'), 'ERR_OTR_CLOSED', 'write after close');
  await rejectsCode(a.channel.init(), 'ERR_OTR_CLOSED', 'init after close');
  await rejectsCode(a.channel.smpVerify('x'), 'ERR_OTR_CLOSED', 'smp after close');
  await rejectsCode(A.account('alice@example.org', PROTO), 'ERR_OTR_CLOSED', 'account() after close');
  await rejectsCode(A.account('other@example.org', PROTO), 'ERR_OTR_CLOSED', 'new account() after close');
  const contact = A.findAccount('alice@example.org', PROTO).findContact('bob@example.org');
  await rejectsCode(() => contact.account.contact('dave@example.org'), 'ERR_OTR_CLOSED', 'contact() after close');
  await A.close(); // idempotent
  await quiet(B);
  assert.deepEqual(a.late, [], 'no callback on alice→bob after close() resolved');
  assert.deepEqual(a2.late, [], 'no callback on alice→carol after close() resolved');

  // The other instance is unaffected.
  await B.close();
});

test('close() right after account() started a key generation, on a fresh instance', T, async () => {
  for (let i = 0; i < (LONG ? 20 : 4); i++) {
    const d = tmpdir();
    const { OTR } = await import('protocol-otr');
    const otr = new OTR(filesIn(d));
    const account = otr.account(`fresh${i}@example.org`, PROTO);
    const second = otr.account(`fresh${i}@example.org`, PROTO); // shares the generation
    const closing = otr.close();
    const [acc, acc2] = await Promise.all([account, second]);
    await closing;
    assert.equal(acc, acc2);
    assert.equal(fs.statSync(filesIn(d).privkeysFile).mode & 0o777, 0o600);
    await rejectsCode(otr.account(`fresh${i}@example.org`, PROTO), 'ERR_OTR_CLOSED');
  }
});

test('an OTR garbage-collected without close(): its key-generation threads end, the process exits cleanly', T, async () => {
  const d = tmpdir();
  await writeKeyFile(d, ['alice@example.org']);
  const result = await runNode(path.join(CHILDREN, 'gc-drop.mjs'), ['run', d, String(LONG ? 100 : 20)], { flags: ['--expose-gc'] });
  assertCleanExit(result, 0, 'gc child');
  const figures = JSON.parse(result.stdout.trim().split('\n').at(-1));
  console.log(`# gc without close(): threads before ${figures.base}, with ${figures.instances} live instances ${figures.during}, after gc ${figures.after}`);
  // libotr's work runs on the process-wide pool: instances add no thread of their own (only a
  // key generation in flight has one).
  assert.ok(
    figures.during < figures.base + figures.instances,
    `no thread per instance (before ${figures.base}, with ${figures.instances} instances ${figures.during})`,
  );
  assert.ok(figures.after <= figures.base + 2, `threads are released after gc (before ${figures.base}, after ${figures.after})`);
});

test('the addon inside worker_threads, the worker terminated mid-work (keygen, AKE, writes, SMP, idle)', T, async () => {
  const d = tmpdir();
  await writeKeyFile(d, ['alice@example.org', 'bob@example.org']);
  for (const phase of ['keygen', 'ake', 'writes', 'smp', 'idle', 'loaded']) {
    const result = await runNode(path.join(CHILDREN, 'worker-terminate.mjs'), ['run', d, phase, String(LONG ? 10 : 2)]);
    assertCleanExit(result, 0, `worker terminated during ${phase}`);
    assert.match(result.stdout, /terminated/, phase);
  }
});

test('process exit with work in flight: the exit code is the one asked for, no crash', T, async () => {
  const d = tmpdir();
  await writeKeyFile(d, ['alice@example.org', 'bob@example.org']);
  const cases = [
    ['writes', 0],
    ['writes', 7],
    ['keygen', 3],
    ['ake', 0],
    ['smp', 5],
    ['natural', 0], // no process.exit: the event loop drains once the work is done
    ['throw', 1], // an uncaught exception with work in flight
  ];
  for (const [phase, code] of cases) {
    const result = await runNode(path.join(CHILDREN, 'exit-inflight.mjs'), ['run', d, phase, String(code)]);
    assertCleanExit(result, code, `exit during ${phase}`);
  }
});

test('a callback that throws: the call rejects with ERR_OTR_CALLBACK, the other callbacks of the op still ran, the channel keeps working', T, async () => {
  const { A, B } = await twoInstances();
  const link = new Net({ manual: true });
  let throwWrite = false;
  let throwRead = false;
  let throwSecure = true;
  let throwDecrypt = false;
  const boom = new Error('boom from a callback');
  const { a, b } = await link.connect(
    A,
    'alice@example.org',
    B,
    'bob@example.org',
    {
      maxMessageSize: 120,
      onWrite: () => {
        if (throwWrite) throw boom;
      },
    },
    {
      onRead: () => {
        if (throwRead) throw boom;
      },
      onGoneSecure: () => {
        if (throwSecure) throw boom;
      },
      onAfterDecrypt: (c, m) => {
        if (throwDecrypt) throw boom;
        return m;
      },
    },
  );
  // onGoneSecure throwing during the AKE: that read rejects, the session is still set up.
  await a.channel.init();
  await link.pump();
  assert.ok(b.errors.length >= 1, 'the read that made bob secure rejected');
  for (const e of b.errors) {
    assert.ok(e instanceof OtrError);
    assert.equal(e.code, 'ERR_OTR_CALLBACK');
    assert.equal(e.cause, boom);
  }
  assert.equal(a.channel.status, 'Unverified');
  assert.equal(b.channel.status, 'Unverified');
  throwSecure = false;
  b.readErrors.length = 0;

  // onWrite throws on every fragment: every fragment still reached onWrite, the write rejects.
  throwWrite = true;
  const text = 'a long message that needs many fragments '.repeat(10);
  const before = a.wire.length;
  const error = await rejectsCode(a.channel.write(text), 'ERR_OTR_CALLBACK', 'write with a throwing onWrite');
  assert.equal(error.cause, boom);
  const fragments = a.wire.slice(before);
  assert.ok(fragments.length > 3, `the message went out in ${fragments.length} fragments`);
  assert.ok(fragments.every((f) => f.startsWith('?OTR|')));
  throwWrite = false;
  await link.pump();
  assert.deepEqual(b.errors, []);
  assert.equal(b.received.at(-1), text, 'bob got the whole message anyway');

  // onRead throws: the read rejects, the message was delivered, the next one works.
  throwRead = true;
  await a.channel.write('first');
  await link.pump();
  assert.equal(b.errors.length, 1);
  assert.equal(b.errors[0].code, 'ERR_OTR_CALLBACK');
  assert.equal(b.received.at(-1), 'first');
  throwRead = false;
  b.readErrors.length = 0;

  // onAfterDecrypt throws: the message arrives unchanged, the read rejects.
  throwDecrypt = true;
  await a.channel.write('second');
  await link.pump();
  assert.equal(b.errors.length, 1);
  assert.equal(b.errors[0].code, 'ERR_OTR_CALLBACK');
  assert.equal(b.received.at(-1), 'second');
  throwDecrypt = false;
  b.readErrors.length = 0;

  for (let i = 0; i < 20; i++) await a.channel.write(`after ${i}`);
  await b.channel.write('and back');
  await link.pump();
  assert.deepEqual(b.errors, []);
  assert.deepEqual(
    b.received.slice(-20),
    Array.from({ length: 20 }, (_, i) => `after ${i}`),
  );
  assert.equal(a.received.at(-1), 'and back');
});

test('re-entrancy: callbacks that write to, read on, and close their own channel', T, async () => {
  const { A, B } = await twoInstances();
  const link = new Net({ manual: true });
  const echoes = [];
  const { a, b } = await link.connect(
    A,
    'alice@example.org',
    B,
    'bob@example.org',
    {
      onGoneSecure: (c) => {
        echoes.push(c.write('hello from onGoneSecure'));
      },
    },
    {
      onRead: (c, m) => {
        if (m === 'please close') {
          echoes.push(c.account.ctx.close());
          return;
        }
        echoes.push(c.write(`echo: ${m}`));
      },
      onSmpEvent: (c, code) => {
        if (code === SmpEvent.SUCCESS) echoes.push(c.write('smp done'));
      },
      onSmp: () => 'shared',
    },
  );
  await makeSecure(link, a, b);
  const n = LONG ? 2000 : 200;
  await Promise.all(Array.from({ length: n }, (_, i) => a.channel.write(`m${i}`)));
  await link.pump();
  await a.channel.smpVerify('shared');
  await link.pump();
  // The echoes are writes made inside callbacks, possibly still on a pool thread when pump()
  // found the inboxes empty: wait for each, then deliver what it wrote (which may echo more).
  for (let waited = 0; waited < echoes.length;) {
    const upTo = echoes.length;
    await Promise.all(echoes.slice(waited, upTo));
    waited = upTo;
    await link.pump();
  }
  assert.deepEqual(b.errors, []);
  assert.deepEqual(a.errors, []);
  const expected = ['hello from onGoneSecure', ...Array.from({ length: n }, (_, i) => `m${i}`)];
  assert.deepEqual(b.received, expected);
  assert.deepEqual(
    a.received.filter((m) => m.startsWith('echo: ')),
    expected.map((m) => `echo: ${m}`),
  );
  assert.ok(a.received.includes('smp done'));
  assert.equal(b.channel.status, 'Private');

  // A callback closing its own OTR: the read that ran it resolves, close() resolves, nothing fires later.
  await a.channel.write('please close');
  const inbox = b.inbox.splice(0);
  await Promise.all(inbox.map((m) => b.channel.read(m)));
  await echoes.at(-1);
  b.closed = true;
  await rejectsCode(b.channel.write('x'), 'ERR_OTR_CLOSED');
  await a.channel.write('are you there?');
  await rejectsCode(b.channel.read(b.inbox.shift()), 'ERR_OTR_CLOSED');
  await quiet(A);
  assert.deepEqual(b.late, []);
  assert.ok(b.args('onEvent').every(([code]) => code !== MessageEvent.RCVDMSG_UNREADABLE));
});
