// One conversation between two bridges through a real chat server, for the end-to-end tests:
// AKE, SMP with a question, N messages each way (some multi-fragment, some unicode), an
// optional nick change halfway, finish. Each side is an `endpoint` of the transport:
//
//   { name, send(to, wireText), onMessage(handler(from, text)), changeName?(newName) }
//
// Everything waits for events (callbacks, messages), never for time. Returns the figures.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OTR, SmpEvent } from 'protocol-otr';

export function otrFiles(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    dir,
    files: {
      privkeysFile: path.join(dir, 'otr.private_key'),
      contactsFile: path.join(dir, 'otr.fingerprints'),
      instanceTagsFile: path.join(dir, 'otr.instance_tags'),
    },
  };
}

const UNICODE = 'ünïcødé ✓ 🔐 日本語 Ωμέγα';

/** The i-th message a side sends: every 20th is long (several fragments), every 7th unicode. */
export function messageText(side, i) {
  let text = `${side}${i}`;
  if (i % 7 === 3) text += ` ${UNICODE}`;
  if (i % 20 === 10) text += ` ${'long '.repeat(150)}${UNICODE} end`;
  return text;
}

// Re-checks predicates whenever something happened.
class Waiters {
  #waiting = new Set();
  poke() {
    for (const w of [...this.#waiting]) w();
  }
  until(check, what) {
    return new Promise((resolve, reject) => {
      const test = () => {
        let ok;
        try {
          ok = check();
        } catch (error) {
          this.#waiting.delete(test);
          return reject(error);
        }
        if (ok) {
          this.#waiting.delete(test);
          resolve();
        }
      };
      test.what = what;
      this.#waiting.add(test);
      test();
    });
  }
  pending() {
    return [...this.#waiting].map((w) => w.what);
  }
}

/**
 * Runs the conversation. `alice` and `bob` are endpoints; `protocol` the OTR protocol name;
 * `messages` per direction; `renameHalfway`: alice changes her name after half the messages;
 * `channelOptions` extra options for both routers.
 */
export async function runConversation({ alice, bob, protocol, messages, renameHalfway = false, channelOptions = {}, keys }) {
  const waiters = new Waiters();
  const started = performance.now();
  const A = new OTR(keys.alice.files);
  const B = new OTR(keys.bob.files);
  const [accA, accB] = await Promise.all([A.account(alice.name, protocol), B.account(bob.name, protocol)]);
  const state = {
    alice: { reads: [], plaintext: [], secure: 0, insecure: 0, smp: [], events: [] },
    bob: { reads: [], plaintext: [], secure: 0, insecure: 0, smp: [], events: [] },
  };
  const question = 'Which door did we paint blue?';
  const answer = 'the one by the garden 🔑';
  const routerFor = (me, endpoint, account) =>
    account.router({
      ...channelOptions,
      onWrite: (c, m) => endpoint.send(c.contact.name, m),
      onRead: (c, m, info) => {
        (info.encrypted ? state[me].reads : state[me].plaintext).push(m);
        waiters.poke();
      },
      onGoneSecure: () => {
        state[me].secure++;
        waiters.poke();
      },
      onGoneInsecure: () => {
        state[me].insecure++;
        waiters.poke();
      },
      onSmp: (c, q) => (q === question ? answer : undefined),
      onSmpEvent: (c, code) => {
        state[me].smp.push(code);
        waiters.poke();
      },
      onEvent: (c, code, text) => {
        state[me].events.push([code, text]);
        waiters.poke();
      },
    });
  const routerA = routerFor('alice', alice, accA);
  const routerB = routerFor('bob', bob, accB);
  alice.onMessage((from, text) => routerA.read(from, text).catch((e) => state.alice.events.push(['read failed', e])));
  bob.onMessage((from, text) => routerB.read(from, text).catch((e) => state.bob.events.push(['read failed', e])));
  const wait = (check, what) => waiters.until(check, what);

  try {
    // AKE, started by alice's query.
    const toBob = routerA.channel(bob.name);
    await toBob.init();
    await wait(() => state.alice.secure >= 1 && state.bob.secure >= 1, 'AKE');
    const toAlice = routerB.channel(alice.name);
    assert.equal(toBob.status, 'Unverified');
    assert.equal(toAlice.status, 'Unverified');
    const akeDone = performance.now();

    // SMP with a question: bob asks, alice's onSmp answers; bob gets the verification.
    await toAlice.smpVerify(answer, question);
    await wait(() => state.bob.smp.includes(SmpEvent.SUCCESS) || state.bob.smp.includes(SmpEvent.FAILURE), 'SMP');
    assert.ok(state.bob.smp.includes(SmpEvent.SUCCESS), `SMP: ${state.bob.smp}`);
    assert.equal(toAlice.status, 'Private');

    // Messages both ways, none awaited one by one; an optional nick change halfway.
    const expected = { alice: [], bob: [] };
    const sendRange = (from, to) => {
      const writes = [];
      for (let i = from; i < to; i++) {
        const a = messageText('a', i);
        const b = messageText('b', i);
        expected.bob.push(a);
        expected.alice.push(b);
        writes.push(toBob.write(a), toAlice.write(b));
      }
      return Promise.all(writes);
    };
    const half = renameHalfway ? Math.floor(messages / 2) : messages;
    await sendRange(0, half);
    await wait(() => state.alice.reads.length >= half && state.bob.reads.length >= half, `first ${half} messages`);
    let renamedTo;
    if (renameHalfway) {
      renamedTo = `${alice.name}_`;
      // alice's nick changes on the network; bob's bridge follows it with router.rename.
      await alice.changeName(renamedTo, (from, to) => routerB.rename(from, to));
      assert.equal(toAlice.contact.name, renamedTo);
      assert.equal(toAlice.status, 'Private', 'trust followed the nick change');
    }
    await sendRange(half, messages);
    await wait(() => state.alice.reads.length >= messages && state.bob.reads.length >= messages, `all ${messages} messages`);
    const messagesDone = performance.now();

    // 0 lost, 0 reordered, nothing in clear.
    assert.deepEqual(state.bob.reads, expected.bob, 'bob got every message of alice, in order');
    assert.deepEqual(state.alice.reads, expected.alice, 'alice got every message of bob, in order');
    assert.deepEqual(state.alice.plaintext, []);
    assert.deepEqual(state.bob.plaintext, []);
    assert.equal(state.bob.secure, 1, 'one AKE: the nick change kept the session');
    if (renameHalfway) assert.equal(accB.findContact(renamedTo).existingChannel, toAlice);

    // finish: bob's side learns the session ended.
    await toBob.finish();
    await wait(() => toAlice.status === 'Finished', 'finish');
    assert.equal(toBob.status, 'Not private');
    return {
      akeMs: Math.round(akeDone - started),
      messagesMs: Math.round(messagesDone - akeDone),
      totalMs: Math.round(performance.now() - started),
      fingerprintsFile: fs.readFileSync(keys.bob.files.contactsFile, 'utf8'),
    };
  } catch (error) {
    error.message += `\n(waiting for: ${waiters.pending().join(', ') || 'nothing'}; alice ${state.alice.reads.length} read, bob ${state.bob.reads.length} read; events ${JSON.stringify({ a: state.alice.events.slice(0, 5), b: state.bob.events.slice(0, 5) })})`;
    throw error;
  } finally {
    await Promise.all([A.close(), B.close()]);
  }
}

/** Keys for both sides, generated once per test file. */
export async function makeKeys(protocol, aliceName, bobName) {
  const alice = otrFiles('otr-e2e-alice-');
  const bob = otrFiles('otr-e2e-bob-');
  const [a, b] = [new OTR(alice.files), new OTR(bob.files)];
  await Promise.all([a.account(aliceName, protocol), b.account(bobName, protocol)]);
  await Promise.all([a.close(), b.close()]);
  return { alice, bob, remove: () => [alice.dir, bob.dir].forEach((d) => fs.rmSync(d, { recursive: true, force: true })) };
}
