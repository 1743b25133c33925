// OTR, Account, Contact and Fingerprint: every member in API.md.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { EventEmitter } from 'node:events';
import { OTR } from 'protocol-otr';
import {
  ALICE,
  BOB,
  PROTO,
  T,
  HUMAN_FP,
  keys,
  cloneDir,
  openOTR,
  reopen,
  filesIn,
  tmpdir,
  closeAll,
  securePair,
  hexToHuman,
  rejectsCode,
} from './helpers/harness.mjs';

after(closeAll);

const SOME_HEX = '0123456789abcdef0123456789abcdef01234567';
const OTHER_HEX = 'fedcba9876543210fedcba9876543210fedcba98';

async function aliceOTR() {
  const k = await keys();
  const dir = cloneDir(k.aliceDir);
  return { otr: await reopen(dir), dir, fp: k.fingerprints.alice };
}

test('OTR is an EventEmitter', T, async () => {
  const { otr } = await aliceOTR();
  assert.ok(otr instanceof EventEmitter);
});

test('otr.account() creates an account with a generated key: name, protocol, fingerprint, ctx', T, async () => {
  const dir = tmpdir();
  const otr = openOTR(dir);
  const acct = await otr.account('new@example.org', 'prpl-xmpp');
  assert.equal(acct.name, 'new@example.org');
  assert.equal(acct.protocol, 'prpl-xmpp');
  assert.match(acct.fingerprint, HUMAN_FP);
  assert.equal(acct.ctx, otr);
  assert.ok(fs.existsSync(filesIn(dir).privkeysFile), 'the key file was written');
});

test('otr.account() finds an existing account without generating a new key', T, async () => {
  const { otr, dir, fp } = await aliceOTR();
  const before = fs.readFileSync(filesIn(dir).privkeysFile);
  const acct = await otr.account(ALICE, PROTO);
  assert.equal(acct.fingerprint, fp);
  assert.deepEqual(fs.readFileSync(filesIn(dir).privkeysFile), before, 'key file untouched');
});

test('otr.findAccount() returns an existing account and undefined for an unknown one', T, async () => {
  const { otr, fp } = await aliceOTR();
  const a = otr.findAccount(ALICE, PROTO);
  assert.ok(a);
  assert.equal(a.name, ALICE);
  assert.equal(a.protocol, PROTO);
  assert.equal(a.fingerprint, fp);
  assert.equal(otr.findAccount('nobody@example.org', PROTO), undefined);
  assert.equal(otr.findAccount(ALICE, 'prpl-other'), undefined, 'protocol is part of the key');
});

test('accounts in the key file are visible to findAccount()/accounts() right after new OTR()', T, async () => {
  // API.md: the constructor "loads the files if present"; findAccount()/accounts() are
  // synchronous. A caller that has not awaited anything must still see the stored accounts.
  const k = await keys();
  const otr = openOTR(cloneDir(k.aliceDir));
  assert.equal(otr.findAccount(ALICE, PROTO)?.fingerprint, k.fingerprints.alice);
  assert.deepEqual(
    otr.accounts().map((a) => a.name),
    [ALICE],
  );
});

test('otr.accounts() lists every account with a private key', T, async () => {
  const { otr } = await aliceOTR();
  assert.deepEqual(
    otr.accounts().map((a) => `${a.name}/${a.protocol}`),
    [`${ALICE}/${PROTO}`],
  );
  await otr.account('second@example.org', PROTO);
  assert.deepEqual(
    otr
      .accounts()
      .map((a) => `${a.name}/${a.protocol}`)
      .sort(),
    [`${ALICE}/${PROTO}`, `second@example.org/${PROTO}`].sort(),
  );
});

test('concurrent otr.account() calls for one account share one key generation', T, async () => {
  const dir = tmpdir();
  const otr = openOTR(dir);
  const [a, b, c] = await Promise.all([
    otr.account('carol@example.org', PROTO),
    otr.account('carol@example.org', PROTO),
    otr.account('carol@example.org', PROTO),
  ]);
  assert.equal(a.fingerprint, b.fingerprint);
  assert.equal(a.fingerprint, c.fingerprint);
  assert.equal(otr.accounts().length, 1);
  const text = fs.readFileSync(filesIn(dir).privkeysFile, 'utf8');
  assert.equal(text.match(/\(account/g).length, 1, 'one key in the file');
});

test('two accounts generated at once on one OTR both end up in the key file', T, async () => {
  const dir = tmpdir();
  const otr = openOTR(dir);
  const [a, b] = await Promise.all([otr.account('one@example.org', PROTO), otr.account('two@example.org', PROTO)]);
  assert.notEqual(a.fingerprint, b.fingerprint);
  await otr.close();
  const again = await reopen(dir);
  assert.equal(again.findAccount('one@example.org', PROTO)?.fingerprint, a.fingerprint);
  assert.equal(again.findAccount('two@example.org', PROTO)?.fingerprint, b.fingerprint);
});

test('account.contact() creates a contact: name and account', T, async () => {
  const { otr } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  const c = await acct.contact(BOB);
  assert.equal(c.name, BOB);
  assert.equal(c.account, acct);
  assert.deepEqual(c.fingerprints(), []);
  assert.equal(c.activeFingerprint, undefined);
});

test('account.findContact() finds a created contact and returns undefined for an unknown one', T, async () => {
  const { otr } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  assert.equal(acct.findContact(BOB), undefined);
  await acct.contact(BOB);
  assert.equal(acct.findContact(BOB)?.name, BOB);
  assert.equal(acct.findContact('nobody@example.org'), undefined);
});

test('account.contacts() lists the contacts of that account only', T, async () => {
  const { otr } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  const other = await otr.account('other@example.org', PROTO);
  await acct.contact(BOB);
  await acct.contact('carol@example.org');
  await other.contact('dave@example.org');
  assert.deepEqual(
    acct
      .contacts()
      .map((c) => c.name)
      .sort(),
    [BOB, 'carol@example.org'].sort(),
  );
  assert.deepEqual(
    other.contacts().map((c) => c.name),
    ['dave@example.org'],
  );
});

test('account.contact() on an existing contact finds it (no duplicate)', T, async () => {
  const { otr } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  const a = await acct.contact(BOB);
  const b = await acct.contact(BOB);
  assert.equal(a.name, b.name);
  assert.equal(acct.contacts().length, 1);
});

test('account.contact(name, 40-hex fingerprint) adds it in human form, unverified', T, async () => {
  const { otr } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  const c = await acct.contact(BOB, SOME_HEX);
  const fps = c.fingerprints();
  assert.equal(fps.length, 1);
  assert.equal(fps[0].hash, hexToHuman(SOME_HEX));
  assert.equal(fps[0].isVerified, false);
  assert.equal(fps[0].status, 'Unused');
});

test('account.contact(name, human-form fingerprint, true) adds it verified', T, async () => {
  const { otr } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  const human = hexToHuman(SOME_HEX);
  const c = await acct.contact(BOB, human, true);
  const [fp] = c.fingerprints();
  assert.equal(fp.hash, human);
  assert.equal(fp.isVerified, true);
});

test('account.contact() accepts upper- and lower-case fingerprints alike', T, async () => {
  const { otr } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  await acct.contact('u@example.org', SOME_HEX.toUpperCase());
  await acct.contact('l@example.org', hexToHuman(SOME_HEX).toLowerCase());
  assert.equal(acct.findContact('u@example.org').fingerprints()[0].hash, hexToHuman(SOME_HEX));
  assert.equal(acct.findContact('l@example.org').fingerprints()[0].hash, hexToHuman(SOME_HEX));
});

test('account.contact() with a second fingerprint adds it to the existing contact', T, async () => {
  const { otr } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  await acct.contact(BOB, SOME_HEX);
  const c = await acct.contact(BOB, OTHER_HEX, true);
  const byHash = Object.fromEntries(c.fingerprints().map((f) => [f.hash, f.isVerified]));
  assert.deepEqual(byHash, { [hexToHuman(SOME_HEX)]: false, [hexToHuman(OTHER_HEX)]: true });
});

test('a fingerprint given to account.contact() is persisted', T, async () => {
  const { otr, dir } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  await acct.contact(BOB, SOME_HEX);
  await acct.contact('carol@example.org', OTHER_HEX, true);
  await otr.close();
  const again = await reopen(dir);
  const a2 = again.findAccount(ALICE, PROTO);
  assert.equal(a2.findContact(BOB)?.fingerprints()[0]?.hash, hexToHuman(SOME_HEX));
  assert.equal(a2.findContact(BOB).fingerprints()[0].isVerified, false);
  assert.equal(a2.findContact('carol@example.org')?.fingerprints()[0]?.isVerified, true);
});

test('fingerprint.contact names its contact', T, async () => {
  const { otr } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  const c = await acct.contact(BOB, SOME_HEX);
  const [fp] = c.fingerprints();
  assert.equal(fp.contact.name, BOB);
  assert.equal(fp.contact.account.name, ALICE);
});

test('fingerprint.setVerified(true) then (false) changes isVerified and resolves to a boolean', T, async () => {
  const { otr } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  const c = await acct.contact(BOB, SOME_HEX);
  const r1 = await c.fingerprints()[0].setVerified(true);
  assert.equal(typeof r1, 'boolean');
  assert.equal(c.fingerprints()[0].isVerified, true);
  const r2 = await c.fingerprints()[0].setVerified(false);
  assert.equal(typeof r2, 'boolean');
  assert.equal(c.fingerprints()[0].isVerified, false);
});

test('fingerprint.forget() drops an unused fingerprint, also from the file', T, async () => {
  const { otr, dir } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  await acct.contact(BOB, SOME_HEX);
  const c = await acct.contact(BOB, OTHER_HEX);
  const victim = c.fingerprints().find((f) => f.hash === hexToHuman(SOME_HEX));
  await victim.forget();
  assert.deepEqual(
    c.fingerprints().map((f) => f.hash),
    [hexToHuman(OTHER_HEX)],
  );
  await otr.close();
  const text = fs.readFileSync(filesIn(dir).contactsFile, 'utf8');
  assert.ok(!text.includes(SOME_HEX), 'forgotten fingerprint is gone from the file');
  assert.ok(text.includes(OTHER_HEX), 'the other one stays');
});

test('forgetting the fingerprint of a live session is refused with ERR_OTR_FINGERPRINT_IN_USE', T, async () => {
  const pair = await securePair();
  const active = pair.alice.contact.activeFingerprint;
  assert.ok(active);
  await rejectsCode(() => active.forget(), 'ERR_OTR_FINGERPRINT_IN_USE', 'forget active');
  assert.equal(pair.alice.contact.fingerprints().length, 1);
  assert.equal(pair.alice.channel.status, 'Unverified');
});

test('contact.activeFingerprint is the peer key once private; fingerprint status follows the session', T, async () => {
  const pair = await securePair();
  const { alice, bob, fingerprints } = pair;
  assert.equal(alice.contact.activeFingerprint.hash, fingerprints.bob);
  assert.equal(bob.contact.activeFingerprint.hash, fingerprints.alice);
  assert.equal(alice.contact.activeFingerprint.status, 'Unverified');
  assert.equal(alice.contact.activeFingerprint.isVerified, false);
  await alice.contact.activeFingerprint.setVerified(true);
  assert.equal(alice.contact.activeFingerprint.status, 'Private');
  assert.equal(alice.channel.status, 'Private');
  await alice.contact.activeFingerprint.setVerified(false);
  assert.equal(alice.channel.status, 'Unverified');
});

test('contact.channel() returns a channel whose account and contact are its owners', T, async () => {
  const { otr } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  const c = await acct.contact(BOB);
  const ch = c.channel({ onWrite() {}, onRead() {} });
  assert.equal(ch.contact, c);
  assert.equal(ch.account, acct);
  assert.equal(ch.status, 'Unused');
  assert.deepEqual(ch.sessions(), []);
  assert.equal(ch.currentSession, 0);
});

test('a second contact.channel() for the same contact throws ERR_OTR_CHANNEL_EXISTS', T, async () => {
  const { otr } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  const c = await acct.contact(BOB);
  c.channel({ onWrite() {}, onRead() {} });
  await rejectsCode(() => c.channel({ onWrite() {}, onRead() {} }), 'ERR_OTR_CHANNEL_EXISTS', 'second channel');
});

test('otr.close() resolves and every later call rejects with ERR_OTR_CLOSED', T, async () => {
  const { otr } = await aliceOTR();
  const acct = await otr.account(ALICE, PROTO);
  const c = await acct.contact(BOB, SOME_HEX);
  const fp = c.fingerprints()[0];
  await otr.close();
  await rejectsCode(() => otr.account(ALICE, PROTO), 'ERR_OTR_CLOSED', 'otr.account');
  await rejectsCode(() => acct.contact('x@example.org'), 'ERR_OTR_CLOSED', 'account.contact');
  await rejectsCode(() => fp.setVerified(true), 'ERR_OTR_CLOSED', 'fingerprint.setVerified');
  await rejectsCode(() => fp.forget(), 'ERR_OTR_CLOSED', 'fingerprint.forget');
  await rejectsCode(() => c.channel({ onWrite() {}, onRead() {} }), 'ERR_OTR_CLOSED', 'contact.channel');
});

test('new OTR() with default-style options object works with a fresh directory', T, async () => {
  const dir = tmpdir();
  const otr = new OTR(filesIn(dir));
  assert.deepEqual(otr.accounts(), []);
  await otr.close();
});
