// Extra symmetric key: createSymkey() and onSymkey.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { Policy } from 'protocol-otr';
import { T, closeAll, createPair, securePair } from './helpers/harness.mjs';

after(closeAll);

test('createSymkey(use, string) from bob to alice: same key, use and useFor', T, async () => {
  const pair = await securePair();
  const key = await pair.bob.channel.createSymkey(3, 'zip');
  await pair.settle();
  assert.equal(key.length, 32);
  const [[k, use, useFor]] = pair.alice.args('onSymkey');
  assert.ok(k.equals(key));
  assert.equal(use, 3);
  assert.equal(useFor, 'zip');
  pair.assertNoErrors();
});

test('createSymkey(use, Uint8Array) sends the bytes; onSymkey decodes them as UTF-8 text', T, async () => {
  const pair = await securePair();
  const text = 'Blowfish ☃ 日本';
  const key = await pair.alice.channel.createSymkey(7, new Uint8Array(Buffer.from(text, 'utf8')));
  await pair.settle();
  const [[k, use, useFor]] = pair.bob.args('onSymkey');
  assert.ok(k.equals(key));
  assert.equal(use, 7);
  assert.equal(useFor, text);
});

test('createSymkey with an empty useFor works', T, async () => {
  const pair = await securePair();
  const key = await pair.alice.channel.createSymkey(1, '');
  await pair.settle();
  const [[k, use, useFor]] = pair.bob.args('onSymkey');
  assert.ok(k.equals(key));
  assert.equal(use, 1);
  assert.equal(useFor, '');
});

test('createSymkey sends one OTR data message and shows nothing to the peer user', T, async () => {
  const pair = await securePair();
  const m = pair.alice.mark();
  await pair.alice.channel.createSymkey(2, 'files');
  const out = pair.alice.wireSince(m);
  assert.equal(out.length, 1);
  assert.ok(out[0].startsWith('?OTR:AAMD'));
  assert.ok(!out[0].includes('files'));
  await pair.settle();
  assert.deepEqual(pair.bob.received, []);
});

test('the key is the session key: it changes after refresh()', T, async () => {
  const pair = await securePair();
  const k1 = await pair.alice.channel.createSymkey(2, 'a');
  await pair.settle();
  await pair.alice.channel.refresh();
  await pair.settle();
  const k2 = await pair.alice.channel.createSymkey(2, 'a');
  await pair.settle();
  assert.ok(!k1.equals(k2), 'new keys after refresh');
  const got = pair.bob.args('onSymkey').map(([k]) => k);
  assert.equal(got.length, 2);
  assert.ok(got[0].equals(k1));
  assert.ok(got[1].equals(k2));
});

test('createSymkey on an unused channel rejects with an OtrError', T, async () => {
  const pair = await createPair();
  await assert.rejects(pair.alice.channel.createSymkey(2, 'x'), (e) => {
    assert.equal(e.name, 'OtrError');
    assert.ok(['ERR_OTR_SYMKEY', 'ERR_OTR_NOT_PRIVATE'].includes(e.code), e.code);
    return true;
  });
  assert.deepEqual(pair.alice.wire, []);
});

test('createSymkey on a plaintext (policy MANUAL) session rejects with an OtrError', T, async () => {
  const pair = await createPair({ alice: { policy: Policy.MANUAL }, bob: { policy: Policy.MANUAL } });
  await pair.alice.channel.write('hi');
  await pair.settle();
  await assert.rejects(pair.alice.channel.createSymkey(2, 'x'), (e) => e.name === 'OtrError');
  assert.deepEqual(pair.alice.wire, ['hi']);
});

test('createSymkey after the contact finished rejects with an OtrError', T, async () => {
  const pair = await securePair();
  await pair.alice.channel.finish();
  await pair.settle();
  assert.equal(pair.bob.channel.status, 'Finished');
  await assert.rejects(pair.bob.channel.createSymkey(2, 'x'), (e) => e.name === 'OtrError');
});
