// What a bridge needs from the library, over real libotr in one process: line-safe wire text
// and the query's text, onRead's info, routing by name, nick changes (contact.rename),
// close({ endSessions }), query retries, and the Pacer.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { OTR, Pacer, MessageEvent } from 'protocol-otr';
import { closeAll, filesIn, openOTR, rejectsCode, tmpdir, T } from './helpers/harness.mjs';

after(closeAll);

// Keys are made once for the file and copied for every pair.
let keyDirs;
async function keyDirsFor(protocol) {
  keyDirs ??= {};
  if (!keyDirs[protocol]) {
    const a = tmpdir('otr-bridge-keys-');
    const b = tmpdir('otr-bridge-keys-');
    const [oa, ob] = [new OTR(filesIn(a)), new OTR(filesIn(b))];
    await Promise.all([oa.account('alice', protocol), ob.account('bob', protocol)]);
    await Promise.all([oa.close(), ob.close()]);
    keyDirs[protocol] = { a, b };
  }
  return keyDirs[protocol];
}

function copyOf(dir) {
  const d = tmpdir('otr-bridge-');
  for (const f of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, f), path.join(d, f));
  return d;
}

function waitFor(check, subscribe) {
  return new Promise((resolve) => {
    if (check()) return resolve();
    subscribe(() => check() && resolve());
  });
}

/**
 * Two bridges (alice, bob) through routers. Wire text goes to the peer's router under the
 * sender's current name; `drop(from, text)` may swallow a message in transit.
 */
async function bridgePair({ protocol = 'prpl-irc', alice = {}, bob = {}, drop = () => false } = {}) {
  const dirs = await keyDirsFor(protocol);
  const A = openOTR(copyOf(dirs.a));
  const B = openOTR(copyOf(dirs.b));
  const [a, b] = await Promise.all([A.account('alice', protocol), B.account('bob', protocol)]);
  const wire = { alice: [], bob: [] };
  const reads = { alice: [], bob: [] };
  const events = { alice: [], bob: [] };
  const waiters = new Set();
  const poke = () => {
    for (const w of [...waiters]) w();
  };
  const names = { alice: 'alice', bob: 'bob' }; // how each side is known to the other
  const routers = {};
  const make = (me, peer, account, extra) =>
    account.router({
      ...extra,
      onWrite: (c, m) => {
        wire[me].push(m);
        if (!drop(me, m)) routers[peer].read(names[me], m).catch((e) => events[me].push(['error', e]));
        poke();
      },
      onRead: (c, m, info) => {
        reads[me].push({ from: c.contact.name, text: m, info });
        poke();
      },
      onGoneSecure: (c) => {
        events[me].push(['secure', c.contact.name]);
        poke();
      },
      onGoneInsecure: (c) => {
        events[me].push(['insecure', c.contact.name]);
        poke();
      },
      onEvent: (c, code, text) => {
        events[me].push(['event', code, text]);
        poke();
      },
      onQueryResult: (c, result) => {
        events[me].push(['query', result]);
        poke();
      },
    });
  routers.alice = make('alice', 'bob', a, alice);
  routers.bob = make('bob', 'alice', b, bob);
  const until = (check) =>
    waitFor(check, (w) => {
      waiters.add(w);
    });
  return { A, B, a, b, routers, wire, reads, events, names, until };
}

test('line-based channels (prpl-irc): the query is one line with a plain text, and no wire text has a line break', T, async () => {
  const p = await bridgePair();
  const ch = p.routers.alice.channel('bob');
  assert.equal(ch.lineBased, true);
  await ch.init();
  await p.until(() => ch.status === 'Unverified' && p.routers.bob.channel('alice').status === 'Unverified');
  assert.match(p.wire.alice[0], /^\?OTRv23\? alice has requested an Off-the-Record private conversation/);
  assert.ok(!p.wire.alice[0].includes('<'), 'no HTML in a line-based query');
  await p.routers.alice.write('bob', 'one\ntwo\r\nthree');
  await p.until(() => p.reads.bob.length === 1);
  assert.equal(p.reads.bob[0].text, 'one\ntwo\r\nthree', 'encrypted text keeps its line breaks inside the ciphertext');
  for (const line of [...p.wire.alice, ...p.wire.bob]) assert.ok(!/[\r\n]/.test(line), `a wire line with a break: ${JSON.stringify(line)}`);
});

test('a plaintext message with line breaks goes out as one wire message per line on a line-based channel', T, async () => {
  const p = await bridgePair({ alice: { policy: 0 } }); // Policy.NEVER: libotr leaves text alone
  await p.routers.alice.write('bob', 'first\n\nsecond\r\nthird');
  assert.deepEqual(p.wire.alice, ['first', 'second', 'third']);
});

test("the query text is settable per OTR, account and channel; non-line-based protocols keep libotr's text by default", T, async () => {
  const p = await bridgePair({ protocol: 'prpl-jabber', drop: () => true }); // only our queries on the wire
  const ch = p.routers.alice.channel('bob');
  assert.equal(ch.lineBased, false);
  await ch.init();
  assert.match(p.wire.alice.at(-1), /^\?OTRv23\?\n<b>alice<\/b> has requested/);
  p.A.queryText = 'OTR, please';
  await ch.init();
  assert.equal(p.wire.alice.at(-1), '?OTRv23? OTR, please');
  p.a.queryText = 'from the account';
  await ch.init();
  assert.equal(p.wire.alice.at(-1), '?OTRv23? from the account');
  ch.queryText = 'line one\nline two';
  await ch.init();
  assert.equal(p.wire.alice.at(-1), '?OTRv23? line one\nline two');
  ch.queryText = '';
  await ch.init();
  assert.equal(p.wire.alice.at(-1), '?OTRv23?');
  // A line-based channel joins a custom text into one line.
  const irc = openOTR(tmpdir());
  const acc = await irc.account('carol', 'prpl-irc');
  const out = [];
  const c = (await acc.contact('dave')).channel({ queryText: 'a\nb\r\nc', onWrite: (_c, m) => out.push(m), onRead() {} });
  await c.init();
  assert.deepEqual(out, ['?OTRv23? a b c']);
  await rejectsCode(async () => {
    c.queryText = 'nul\0';
  }, 'ERR_OTR_INVALID_ARGUMENT');
});

test('onRead says whether libotr decrypted the message, and from which instance', T, async () => {
  const p = await bridgePair();
  const ch = p.routers.alice.channel('bob');
  await ch.init();
  await p.until(() => ch.status === 'Unverified' && p.routers.bob.channel('alice').status === 'Unverified');
  await p.routers.bob.write('alice', 'secret');
  await p.until(() => p.reads.alice.length === 1);
  // Who decrypted it: the session's fingerprint and whether it is verified (not yet).
  assert.deepEqual(p.reads.alice[0].info, { encrypted: true, instag: p.b.instanceTag, fingerprint: p.b.fingerprint, verified: false });
  // Plaintext injected into the encrypted conversation (as anyone on the network can): libotr
  // reports it as an event, never as a message of the conversation.
  await p.routers.alice.read('bob', 'injected plaintext');
  assert.equal(p.reads.alice.length, 1);
  assert.ok(p.events.alice.some(([k, code, text]) => k === 'event' && code === MessageEvent.RCVDMSG_UNENCRYPTED && text === 'injected plaintext'));
  // Plaintext from someone with no session: not encrypted.
  await p.routers.alice.read('eve', 'hello');
  assert.deepEqual(p.reads.alice.slice(1), [{ from: 'eve', text: 'hello', info: { encrypted: false, instag: 0, fingerprint: undefined, verified: false } }]);
});

test("a router opens channels on first use and keeps each contact's arrival order without awaiting anything", T, async () => {
  const p = await bridgePair();
  const ch = p.routers.alice.channel('bob');
  await ch.init();
  await p.until(() => ch.status === 'Unverified' && p.routers.bob.channel('alice').status === 'Unverified');
  // Many senders at once, none awaited: every contact gets its channel, in order.
  const texts = [];
  for (let i = 0; i < 50; i++) {
    p.routers.alice.read(`nick${i % 5}`, `m${i}`);
    texts.push(`m${i}`);
  }
  for (let i = 0; i < 200; i++) p.routers.bob.write('alice', `e${i}`);
  await p.until(() => p.reads.alice.length === 250);
  // Each contact's messages in the order they arrived (contacts run in parallel).
  for (let n = 0; n < 5; n++) {
    const own = (r) => r.from === `nick${n}`;
    assert.deepEqual(
      p.reads.alice.filter((r) => !r.info.encrypted && own(r)).map((r) => r.text),
      texts.filter((_, i) => i % 5 === n),
    );
  }
  assert.deepEqual(
    p.reads.alice.filter((r) => r.info.encrypted).map((r) => r.text),
    Array.from({ length: 200 }, (_, i) => `e${i}`),
  );
  assert.equal(p.routers.alice.channels().length, 6);
  assert.equal(p.routers.alice.channel('nick3'), p.a.findContact('nick3').existingChannel);
});

test('contact.rename: the session and trust follow a nick change; the fingerprints file has the new name', T, async () => {
  const p = await bridgePair();
  const toBob = p.routers.alice.channel('bob');
  await toBob.init();
  const toAlice = p.routers.bob.channel('alice');
  await p.until(() => toBob.status === 'Unverified' && toAlice.status === 'Unverified');
  await toAlice.contact.fingerprints()[0].setVerified(true);
  assert.equal(toAlice.status, 'Private');
  const secureBefore = p.events.bob.filter(([k]) => k === 'secure').length;

  // alice changes nick: bob's side follows, and alice's messages now arrive under the new name.
  const renamed = toAlice.contact.rename('alice_');
  p.names.alice = 'alice_';
  p.routers.alice.write('bob', 'after the nick change');
  p.routers.bob.write('alice_', 'to the new nick');
  await renamed;
  await p.until(() => p.reads.bob.length === 1 && p.reads.alice.length === 1);
  assert.deepEqual(p.reads.bob[0], {
    from: 'alice_',
    text: 'after the nick change',
    info: { encrypted: true, instag: p.a.instanceTag, fingerprint: p.a.fingerprint, verified: true },
  });
  assert.equal(p.reads.alice[0].text, 'to the new nick');
  assert.equal(toAlice.contact.name, 'alice_');
  assert.equal(toAlice.status, 'Private', 'trust followed the rename');
  assert.equal(p.events.bob.filter(([k]) => k === 'secure').length, secureBefore, 'no new AKE');
  assert.equal(p.b.findContact('alice'), undefined);
  assert.equal(p.b.findContact('alice_'), toAlice.contact);
  const file = fs.readFileSync(p.B.contactsFile, 'utf8');
  assert.match(file, /^alice_\tbob\tprpl-irc\t[0-9a-f]{40}\tverified$/m);
  assert.doesNotMatch(file, /^alice\t/m);
  // The old nick is free: someone using it now is a new contact, in plaintext.
  await p.routers.bob.read('alice', 'I took the old nick');
  assert.notEqual(p.b.findContact('alice'), toAlice.contact);
  assert.equal(p.b.findContact('alice').existingChannel.status, 'Not private');
  // The new file loads with the session's trust under the new name.
  await p.B.close();
  const again = new OTR({ privkeysFile: p.B.privkeysFile, contactsFile: p.B.contactsFile, instanceTagsFile: p.B.instanceTagsFile });
  const contact = again.findAccount('bob', 'prpl-irc').findContact('alice_');
  assert.equal(contact.fingerprints()[0].isVerified, true);
  await again.close();
});

test('close({ endSessions: true }) tells every encrypted contact we are leaving before closing', T, async () => {
  const p = await bridgePair();
  const ch = p.routers.alice.channel('bob');
  await ch.init();
  const back = p.routers.bob.channel('alice');
  await p.until(() => ch.status === 'Unverified' && back.status === 'Unverified');
  p.routers.alice.channel('carol'); // not encrypted: told nothing
  const sent = p.wire.alice.length;
  await p.A.close({ endSessions: true });
  assert.equal(p.wire.alice.length, sent + 1, 'one disconnect message, to bob only');
  await p.until(() => back.status === 'Finished');
  await rejectsCode(
    p.A.close({ endSessions: 'yes' }).then(() => p.B.close({ endSessions: 1 })),
    'ERR_OTR_INVALID_ARGUMENT',
  );
});

test('init() retries the query while the contact does not answer, and reports the outcome', T, async (t) => {
  // bob's client drops the first query it gets (as irssi's does while it generates a key): that
  // query goes unanswered whatever the timing, so a retry is what starts OTR.
  let queriesSeen = 0;
  const p = await bridgePair({
    // Retries to spare: an AKE slowed past the interval (a loaded machine, valgrind) gets another
    // query instead of an early "not secure", and more retries never slow a success. How many
    // queries it took is whatever went on the wire, which the outcome must report.
    alice: { queryRetryInterval: 1000, queryRetries: 10 },
    drop: (from, m) => from === 'alice' && m.startsWith('?OTRv') && ++queriesSeen === 1,
  });
  // The retry timer is unref'd (an OTR never keeps a process alive); a bridge's sockets do.
  const keepAlive = setInterval(() => {}, 60_000);
  t.after(() => clearInterval(keepAlive));
  const ch = p.routers.alice.channel('bob');
  await ch.init();
  await p.until(() => p.events.alice.some(([k]) => k === 'query'));
  const queriesSent = p.wire.alice.filter((m) => m.startsWith('?OTRv')).length;
  assert.ok(queriesSent >= 2, `the unanswered first query was retried: ${queriesSent} sent`);
  assert.deepEqual(p.events.alice.find(([k]) => k === 'query')[1], { secure: true, queries: queriesSent });
  assert.equal(ch.status, 'Unverified');
  assert.equal(p.events.alice.filter(([k]) => k === 'query').length, 1, 'one outcome');

  // A contact that never answers: the retries are bounded, and the outcome says so.
  const silent = await bridgePair({ alice: { queryRetryInterval: 20, queryRetries: 3 }, drop: () => true });
  const lost = silent.routers.alice.channel('bob');
  await lost.init();
  await silent.until(() => silent.events.alice.some(([k]) => k === 'query'));
  assert.deepEqual(silent.events.alice.find(([k]) => k === 'query')[1], { secure: false, queries: 4 });
  assert.equal(silent.wire.alice.filter((m) => m.startsWith('?OTRv')).length, 4);
});

test('a query retry waits while the contact is sending (an AKE under way is not restarted)', T, async (t) => {
  const keepAlive = setInterval(() => {}, 60_000);
  t.after(() => clearInterval(keepAlive));
  // bob's client never answers OTR, but says something right after the first query: the next
  // query waits one more interval. Timers never fire early, so the gap is a lower bound.
  const queryTimes = [];
  let routers;
  const p = await bridgePair({
    alice: { queryRetryInterval: 40, queryRetries: 1 },
    drop: (from, m) => {
      if (from === 'alice' && m.startsWith('?OTRv')) {
        queryTimes.push(performance.now());
        if (queryTimes.length === 1) setImmediate(() => routers.alice.read('bob', 'one moment'));
      }
      return true;
    },
  });
  routers = p.routers;
  await p.routers.alice.channel('bob').init();
  await p.until(() => p.events.alice.some(([k]) => k === 'query'));
  assert.deepEqual(p.events.alice.find(([k]) => k === 'query')[1], { secure: false, queries: 2 });
  assert.equal(queryTimes.length, 2);
  assert.ok(queryTimes[1] - queryTimes[0] >= 2 * 40 - 2, `second query after ${queryTimes[1] - queryTimes[0]} ms`);
});

test('Pacer: lets a burst through, then paces, in order, with its depth visible', T, async () => {
  const sent = [];
  const pacer = new Pacer({ linesPerSecond: 200, burst: 5, send: (line) => sent.push(line) });
  const started = performance.now();
  for (let i = 0; i < 25; i++) pacer.push(`l${i}`);
  // The burst goes at once (a slow machine may have earned a token or two while pushing).
  assert.ok(sent.length >= 5 && sent.length < 25, `sent at once: ${sent.length}`);
  assert.equal(pacer.depth, 25 - sent.length);
  await pacer.drained();
  const elapsed = performance.now() - started;
  assert.deepEqual(
    sent,
    Array.from({ length: 25 }, (_, i) => `l${i}`),
  );
  assert.equal(pacer.depth, 0);
  assert.equal(pacer.sent, 25);
  // 20 lines after the burst at 200/s cannot take less than 100 ms (a lower bound only).
  assert.ok(elapsed >= 95, `paced: ${elapsed} ms`);
  // close() hands back what was not sent.
  const slow = new Pacer({ linesPerSecond: 0.001, send: (line) => sent.push(line) });
  slow.push('x');
  slow.push('y');
  slow.push('z');
  assert.equal(sent.at(-1), 'x');
  assert.equal(slow.depth, 2);
  assert.deepEqual(slow.close(), ['y', 'z']);
  assert.throws(() => slow.push('w'), { code: 'ERR_OTR_INVALID_ARGUMENT' });
  assert.throws(() => new Pacer({ linesPerSecond: 0, send() {} }), { code: 'ERR_OTR_INVALID_ARGUMENT' });
});
