// Shared two-party harness for the protocol-otr test suite.
//
// Real libotr, real files in fresh temp dirs, no mocks. Two OTR instances (alice, bob), each
// with its own key files, talk through their channels: every onWrite queues the wire text
// for the peer, and a per-party pump hands it to the peer's read() one message at a time, in
// order, asynchronously. Every callback is recorded, in order, with its arguments.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OTR, OtrError } from 'protocol-otr';

export const ALICE = 'alice@example.org';
export const BOB = 'bob@example.org';
export const PROTO = 'prpl-jabber';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = path.join(REPO, 'test', 'fixtures');

// Per-test safety net against hangs (not a performance assertion).
export const T = { timeout: 180_000 };

export const CALLBACKS = [
  'onWrite',
  'onRead',
  'onGoneSecure',
  'onGoneInsecure',
  'onStillSecure',
  'onUnverifiedFingerprint',
  'onSymkey',
  'onTimer',
  'onSmp',
  'onError',
  'onEvent',
  'onSmpEvent',
  'onBeforeEncrypt',
  'onAfterDecrypt',
  'onIsContactLoggedIn',
];

// What the recording wrapper returns when the test gives no handler of its own.
const DEFAULT_RETURN = {
  onBeforeEncrypt: (_c, m) => m,
  onAfterDecrypt: (_c, m) => m,
  onIsContactLoggedIn: () => 1,
};

const tracked = new Set();
const tempDirs = [];

export function tmpdir(prefix = 'otr-test-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

export function filesIn(dir) {
  return {
    privkeysFile: path.join(dir, 'otr.private_key'),
    contactsFile: path.join(dir, 'otr.fingerprints'),
    instanceTagsFile: path.join(dir, 'otr.instance_tags'),
  };
}

export function cloneDir(src, { without = [] } = {}) {
  const d = tmpdir('otr-clone-');
  for (const f of fs.readdirSync(src)) {
    if (without.includes(f)) continue;
    fs.copyFileSync(path.join(src, f), path.join(d, f));
  }
  return d;
}

// Every OTR instance made through here is closed by closeAll() (call it in after()).
export function openOTR(dirOrFiles) {
  const files = typeof dirOrFiles === 'string' ? filesIn(dirOrFiles) : dirOrFiles;
  const otr = new OTR(files);
  tracked.add(otr);
  return otr;
}

// Open over existing files: the constructor loads them (objects.test.mjs checks that what
// they hold is visible as soon as it returns).
export async function reopen(dirOrFiles) {
  return openOTR(dirOrFiles);
}

export async function closeAll() {
  const all = [...tracked];
  tracked.clear();
  await Promise.all(all.map((o) => o.close().catch(() => {})));
  for (const d of tempDirs.splice(0)) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      /* ignore */
    }
  }
}

// Keys are generated once per test file (per process) and copied for every pair.
let keyCache;
export function keys() {
  if (!keyCache) {
    keyCache = (async () => {
      const aliceDir = tmpdir('otr-keys-alice-');
      const bobDir = tmpdir('otr-keys-bob-');
      const a = new OTR(filesIn(aliceDir));
      const b = new OTR(filesIn(bobDir));
      const [aa, bb] = await Promise.all([a.account(ALICE, PROTO), b.account(BOB, PROTO)]);
      const fingerprints = { alice: aa.fingerprint, bob: bb.fingerprint };
      await Promise.all([a.close(), b.close()]);
      return { aliceDir, bobDir, fingerprints };
    })();
  }
  return keyCache;
}

export const humanToHex = (h) => h.replace(/ /g, '').toLowerCase();
export const hexToHuman = (x) => x.toUpperCase().match(/.{8}/g).join(' ');
export const HUMAN_FP = /^[0-9A-F]{8}( [0-9A-F]{8}){4}$/;

const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Party {
  constructor(net, name) {
    this.net = net;
    this.name = name;
    this.calls = []; // { name, args, channel, seq }
    this.wire = []; // everything this party's onWrite produced
    this.inbox = [];
    this.held = [];
    this.paused = false;
    this.pumping = false;
    this.readErrors = []; // { message, error }
    this.peers = [];
    this.filter = null; // (msg) => msg | null, applied to outgoing wire text before delivery
  }

  // Arguments (without the channel) of every call of one callback, in order.
  args(cbName) {
    return this.calls.filter((c) => c.name === cbName).map((c) => c.args);
  }
  count(cbName) {
    return this.calls.filter((c) => c.name === cbName).length;
  }
  names(filter) {
    return this.calls.map((c) => c.name).filter((n) => !filter || filter.includes(n));
  }
  get received() {
    return this.args('onRead').map((a) => a[0]);
  }
  events() {
    return this.args('onEvent').map((a) => a[0]);
  }
  smpEvents() {
    return this.args('onSmpEvent').map(([code, progress]) => [code, progress]);
  }
  mark() {
    return { calls: this.calls.length, wire: this.wire.length };
  }
  since(mark) {
    return this.calls.slice(mark.calls);
  }
  wireSince(mark) {
    return this.wire.slice(mark.wire);
  }

  callbacks(handlers = {}, omit = []) {
    const cbs = {};
    for (const name of CALLBACKS) {
      if (omit.includes(name)) continue;
      const user = handlers[name];
      cbs[name] = (c, ...args) => {
        this.calls.push({ name, args, channel: c, seq: this.net.seq++ });
        if (name === 'onWrite') this.net.deliver(this, args[0]);
        if (user) return user(c, ...args);
        const def = DEFAULT_RETURN[name];
        return def ? def(c, ...args) : undefined;
      };
    }
    return cbs;
  }

  async pump() {
    if (this.pumping) return;
    this.pumping = true;
    try {
      await null;
      while (this.inbox.length && !this.paused) {
        const m = this.inbox.shift();
        try {
          await this.channel.read(m);
        } catch (error) {
          this.readErrors.push({ message: m, error });
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
    this.inbox.push(...this.held.splice(0));
    this.pump();
  }
  // Messages held for this party while paused (removed from the hold).
  take() {
    return this.held.splice(0);
  }
}

export class Net {
  constructor() {
    this.parties = {};
    this.seq = 0;
  }

  deliver(from, msg) {
    from.wire.push(msg);
    let out = msg;
    if (from.filter) out = from.filter(msg);
    if (out == null) return;
    for (const to of from.peers) {
      if (to.paused) {
        to.held.push(out);
      } else {
        to.inbox.push(out);
        to.pump();
      }
    }
  }

  busy() {
    return Object.values(this.parties).some((p) => p.pumping || (p.inbox.length > 0 && !p.paused));
  }

  // Pump until every queue is empty and no read is pending.
  async settle({ limitMs = 120_000 } = {}) {
    const start = Date.now();
    for (;;) {
      while (this.busy()) {
        if (Date.now() - start > limitMs) throw new Error('settle(): message exchange did not finish');
        await sleep(1);
      }
      await tick();
      await tick();
      if (!this.busy()) return;
    }
  }

  get errors() {
    return Object.values(this.parties).flatMap((p) => p.readErrors.map((e) => ({ party: p.name, ...e })));
  }

  assertNoErrors() {
    const errs = this.errors;
    assert.deepEqual(
      errs.map((e) => `${e.party}: ${e.error?.code} ${e.error?.message}`),
      [],
      'reads handed to the channel must not reject',
    );
  }

  // A party with its own OTR instance over `dir`, its account, the contact and a channel.
  async addParty(name, { dir, account, protocol = PROTO, contact, policy, maxMessageSize, handlers, omit, channel = {} }) {
    const p = new Party(this, name);
    this.parties[name] = p;
    p.dir = dir;
    p.otr = openOTR(dir);
    p.account = await p.otr.account(account, protocol);
    p.contact = await p.account.contact(contact);
    const opts = { ...channel, ...p.callbacks(handlers, omit) };
    if (policy !== undefined) opts.policy = policy;
    if (maxMessageSize !== undefined) opts.maxMessageSize = maxMessageSize;
    p.channel = p.contact.channel(opts);
    return p;
  }
}

// createPair({ alice: {policy, maxMessageSize, handlers, omit, dir}, bob: {...} })
export async function createPair(opts = {}) {
  const k = await keys();
  const net = new Net();
  const aOpts = opts.alice ?? {};
  const bOpts = opts.bob ?? {};
  const alice = await net.addParty('alice', {
    account: ALICE,
    contact: BOB,
    ...aOpts,
    dir: aOpts.dir ?? cloneDir(k.aliceDir),
  });
  const bob = await net.addParty('bob', {
    account: BOB,
    contact: ALICE,
    ...bOpts,
    dir: bOpts.dir ?? cloneDir(k.bobDir),
  });
  alice.peers = [bob];
  bob.peers = [alice];
  net.alice = alice;
  net.bob = bob;
  net.fingerprints = k.fingerprints;
  return net;
}

// A pair whose channels are already private (alice sent the query).
export async function securePair(opts) {
  const pair = await createPair(opts);
  await pair.alice.channel.init();
  await pair.settle();
  assert.equal(pair.alice.channel.status, 'Unverified', 'alice reaches Unverified');
  assert.equal(pair.bob.channel.status, 'Unverified', 'bob reaches Unverified');
  pair.assertNoErrors();
  return pair;
}

// Assert that fnOrPromise throws or rejects with an OtrError of the given code(s).
export async function rejectsCode(fnOrPromise, code, what = '') {
  const codes = Array.isArray(code) ? code : [code];
  let err;
  let threw = false;
  try {
    await (typeof fnOrPromise === 'function' ? fnOrPromise() : fnOrPromise);
  } catch (e) {
    err = e;
    threw = true;
  }
  assert.ok(threw, `${what}: expected an OtrError ${codes.join('|')}, but the call succeeded`);
  assert.ok(
    err instanceof OtrError,
    `${what}: expected an OtrError, got ${err?.constructor?.name}: ${err?.message ?? err}`,
  );
  assert.ok(codes.includes(err.code), `${what}: expected code ${codes.join('|')}, got ${err.code} (${err.message})`);
  assert.equal(typeof err.message, 'string');
  assert.ok(err.message.length > 0, `${what}: error message must not be empty`);
  return err;
}

// The sender instance tag carried by a v3 OTR wire message (data/AKE message or fragment).
export function senderInstag(msg) {
  const frag = /^\?OTR\|([0-9a-fA-F]+)\|([0-9a-fA-F]+),/.exec(msg);
  if (frag) return parseInt(frag[1], 16);
  const m = /\?OTR:(AAM[A-Za-z0-9+/=]+)\.?/.exec(msg);
  if (!m) return undefined;
  const bytes = Buffer.from(m[1], 'base64');
  return bytes.readUInt32BE(3);
}

export function isQuery(msg) {
  return msg.startsWith('?OTRv') || msg.startsWith('?OTR?');
}

export { OtrError };
