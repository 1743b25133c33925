// One regression test per place where protocol-otr works around or reaches into libotr 4.1's
// internals (each guarded by the 4.1.x >= 4.1.1 check at load): the plaintext downgrade on a
// contact's re-AKE (channel.cc, Receive), the finished AKE's state freed once a session is
// encrypted (channel.cc, ReleaseFinishedAke), one contact's slice of the context list
// (contact_view.cc) and forgetting contexts (guard.cc, forget.cc). The guard's limits have
// their own tests in attacks.test.mjs and ../limits.test.mjs.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { Net, PROTO, T, closeAll, filesIn, makeSecure, openOTR, tmpdir, writeKeyFile } from '../helpers/harness.mjs';

after(closeAll);

const type = (wire) => (/^\?OTR:AA[MI]/.test(wire) ? Buffer.from(wire.slice(5, 13), 'base64')[2] : undefined);
const DH_KEY = 0x0a;

async function securePairOf(a = {}, b = {}) {
  const [da, db] = [tmpdir(), tmpdir()];
  await Promise.all([writeKeyFile(da, ['alice@example.org']), writeKeyFile(db, ['bob@example.org'])]);
  const net = new Net({ manual: true });
  const pair = await net.connect(openOTR(da), 'alice@example.org', openOTR(db), 'bob@example.org', a, b);
  await makeSecure(net, pair.a, pair.b);
  return { net, ...pair };
}

test('plaintext downgrade: a re-AKE the contact starts never drops our session to plaintext, and nothing goes out in clear meanwhile', T, async () => {
  const { net, a: alice, b: bob } = await securePairOf();
  await alice.channel.init(); // alice's query: bob answers from his master context
  let sawDhKey = false;
  for (let step = 0; step < 50; step++) {
    const party = bob.inbox.length > 0 ? bob : alice.inbox.length > 0 ? alice : undefined;
    if (!party) break;
    const message = party.inbox.shift();
    await party.read(message);
    if (party === bob) {
      assert.equal(bob.channel.status, 'Unverified', `bob stays private after reading message type ${type(message)}`);
      if (type(message) === DH_KEY && !sawDhKey) {
        // libotr 4.1.1 copied the master's plaintext msgstate over bob's instance here.
        sawDhKey = true;
        const mark = bob.wire.length;
        await bob.channel.write('written in the middle of the re-AKE');
        const sent = bob.wire.slice(mark);
        assert.ok(sent.length > 0 && sent.every((m) => m.startsWith('?OTR:AAM')), `encrypted: ${sent.map((m) => m.slice(0, 20))}`);
      }
    }
  }
  assert.ok(sawDhKey, 'the re-AKE reached bob with a DH-Key');
  await net.pump();
  // Encrypted under the keys of the AKE being replaced: alice, done with the new AKE first,
  // cannot read it (RCVDMSG_UNREADABLE), which is OTR's rule; what matters is that it never
  // travelled in clear.
  assert.ok(!alice.args('onEvent').some(([code]) => code === 13), 'nothing arrived unencrypted');
  assert.equal(alice.channel.status, 'Unverified');
  assert.equal(bob.channel.status, 'Unverified');
  net.assertNoErrors();
});

test('finished AKE state freed: fragmented messages, key rotation, the extra symmetric key, SMP and a new AKE all still work', T, async () => {
  const {
    net,
    a: alice,
    b: bob,
  } = await securePairOf({ maxMessageSize: 120, onSmp: () => 'shared' }, { maxMessageSize: 120, onSmp: () => 'shared', onSymkey: () => {} });
  // The fragmenter reads the protocol version from the AKE state we cleared.
  const long = 'x'.repeat(2000);
  for (let i = 0; i < 5; i++) {
    await alice.channel.write(`${long}${i}`);
    await bob.channel.write(`back ${i}`);
    await net.pump();
  }
  assert.deepEqual(
    bob.received.slice(-5),
    [0, 1, 2, 3, 4].map((i) => `${long}${i}`),
  );
  assert.ok(alice.wire.slice(-3).every((m) => m.length <= 120));
  const key = await alice.channel.createSymkey(7, 'files');
  await net.pump();
  assert.deepEqual(bob.args('onSymkey').at(-1)[0], key);
  await alice.channel.smpVerify('shared');
  await net.pump();
  assert.equal(alice.channel.status, 'Private');
  await bob.channel.refresh();
  await net.pump();
  assert.equal(bob.channel.status, 'Private');
  await alice.channel.write('after the new AKE');
  await net.pump();
  assert.equal(bob.received.at(-1), 'after the new AKE');
  net.assertNoErrors();
});

test(
  'one contact at a time in the context list: with many contacts, forgotten ones and eviction, every other contact is intact (poll, the fingerprints file)',
  T,
  async () => {
    const dir = tmpdir();
    await writeKeyFile(dir, ['bridge@example.org']);
    const otr = openOTR({ ...filesIn(dir), maxContacts: 300 });
    const bridge = await otr.account('bridge@example.org', PROTO);
    const fp = (n) => n.toString(16).padStart(40, '0');
    const count = 600;
    const keep = new Map();
    for (let i = 0; i < count; i++) {
      const name = `contact${i}@example.org`;
      // A verified fingerprint for every third one: never evicted, always in the file.
      const contact = await bridge.contact(name, fp(i + 1), i % 3 === 0);
      const channel = contact.channel({ onWrite: () => {}, onRead: () => {} });
      await channel.read(i % 2 ? `hello ${i}` : '?OTRv3?');
      if (i % 7 === 0) await contact.forget({ unverifiedFingerprints: true });
      else keep.set(name, i);
    }
    const live = bridge.contacts().filter((c) => c.existingChannel);
    await live[0].existingChannel.ping(); // libotr's poll walks every context
    await otr.close();
    const lines = fs.readFileSync(filesIn(dir).contactsFile, 'utf8').split('\n').filter(Boolean);
    const byName = new Map(lines.map((line) => [line.split('\t')[0], line]));
    for (let i = 0; i < count; i++) {
      const name = `contact${i}@example.org`;
      const line = byName.get(name);
      if (i % 7 === 0 && i % 3 !== 0) {
        assert.equal(line, undefined, `${name}: forgotten with its unverified fingerprint`);
      } else {
        assert.ok(line?.includes(fp(i + 1)), `${name}: its fingerprint is in the file`);
        assert.equal(line.endsWith('\tverified'), i % 3 === 0, `${name}: its trust`);
      }
    }
    assert.ok(live.length <= 300);
  },
);
