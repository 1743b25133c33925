// The one harness of the protocol-otr test suite (behaviour suites, reliability tests and
// their child processes): temp dirs, opening and closing OTR instances, key files, error
// assertions, child processes, and the two-party wiring.
//
// Real libotr, real files in fresh temp dirs, no mocks. Parties (a channel each, on its own or
// a shared OTR instance) talk through their channels: every onWrite queues the wire text for
// the peer. A Net delivers either by itself (a per-party pump hands each message to the
// peer's read() one at a time, in order, asynchronously; settle() waits until nothing moves)
// or, made with { manual: true }, only when the test calls pump(). Every callback is
// recorded, in order, with its arguments.
//
// Callback modes (OTR_TEST_CALLBACKS): the value-returning callbacks (onBeforeEncrypt,
// onAfterDecrypt, onIsContactLoggedIn, onError, onSmp) make the pool thread running libotr ask
// JS and wait for the answer. In mode 'none' (the default, what most users run) a party installs them
// only when the test gives a handler; in mode 'values' every party installs all of them
// (identity, 1 for "logged in", libotr's own texts and no SMP secret when the test gives no
// handler). `npm test` runs the behaviour suites in both modes.
//
// Importing this module has no side effects.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { OTR, OtrError } from 'protocol-otr';

export const ALICE = 'alice@example.org';
export const BOB = 'bob@example.org';
export const PROTO = 'prpl-jabber';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = path.join(REPO, 'test', 'fixtures');
export const CHILDREN = path.join(REPO, 'test', 'reliability', 'children');
export const LONG = process.env.OTR_LONG === '1';
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

export const CALLBACK_MODE = process.env.OTR_TEST_CALLBACKS ?? 'none';
if (!['none', 'values'].includes(CALLBACK_MODE)) {
  throw new Error(`OTR_TEST_CALLBACKS must be 'none' or 'values', not '${CALLBACK_MODE}'`);
}

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

// What the recording wrapper returns when the test gives no handler of its own (installed
// without a handler in mode 'values' only).
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

// Every OTR instance made through here is closed, and every temp dir removed, by closeAll()
// (call it in after()).
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
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

// A test that cannot run here: in CI it fails (CI must provide what it needs); elsewhere it
// is skipped with the reason printed.
export function cannotRun(t, why) {
  if (IN_CI) assert.fail(`cannot run in CI: ${why}`);
  console.log(`# skipped: ${why}`);
  t.skip(why);
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

export const tick = () => new Promise((r) => setImmediate(r));
// Resolves once `condition()` holds, checked on every turn of the event loop (never a timer).
export const turnsUntil = (condition) =>
  new Promise((resolve) => {
    const check = () => (condition() ? resolve() : setImmediate(check));
    check();
  });

// Awaits `promise` with the event loop held open: for events the addon delivers while no call
// is pending (its delivery handle then does not keep the loop alive), which the test runner
// would otherwise see as a test that can never finish.
export async function awaitWithLoopAlive(promise) {
  const hold = setInterval(() => {}, 60_000);
  try {
    return await promise;
  } finally {
    clearInterval(hold);
  }
}

export function rssMB() {
  return process.memoryUsage().rss / 1048576;
}

let gcFunction;
// A full garbage collection, also without --expose-gc.
export function gc() {
  if (!gcFunction) {
    v8.setFlagsFromString('--expose-gc');
    gcFunction = globalThis.gc ?? vm.runInNewContext('gc');
  }
  gcFunction();
}

// Collections with event-loop turns between them, so finalizers and weak callbacks run.
export async function settleGc() {
  for (let i = 0; i < 3; i++) {
    gc();
    await tick();
    await tick();
  }
}

// One generated DSA key (per process) reused under many account names: key files with
// hundreds of accounts without hundreds of key generations.
let keyTemplate;
export async function keyTemplateText() {
  if (!keyTemplate) {
    keyTemplate = (async () => {
      const d = tmpdir('otr-key-');
      const otr = new OTR(filesIn(d));
      await otr.account('template@example.org', PROTO);
      await otr.close();
      // Bytes, not UTF-8: libgcrypt may print the private number as a quoted string of raw
      // bytes (about one key in 170), which UTF-8 decoding would ruin.
      const text = fs.readFileSync(filesIn(d).privkeysFile, 'latin1');
      const start = text.indexOf(' (account');
      const end = text.lastIndexOf(')');
      return text.slice(start, end);
    })();
  }
  return keyTemplate;
}

// Writes a private key file holding `names` (all sharing the template key).
export async function writeKeyFile(dir, names, protocol = PROTO) {
  const account = await keyTemplateText();
  const body = names
    .map((n) => account.replace('(name "template@example.org")', `(name "${n}")`).replace('(protocol prpl-jabber)', `(protocol ${protocol})`))
    .join('');
  const file = filesIn(dir).privkeysFile;
  fs.writeFileSync(file, `(privkeys\n${body})\n`, { mode: 0o600, encoding: 'latin1' });
  return file;
}

// Two OTR instances over fresh dirs whose key files hold the given accounts (no keygen).
export async function twoInstances({ alice = [ALICE], bob = [BOB] } = {}) {
  const da = tmpdir('otr-a-');
  const db = tmpdir('otr-b-');
  await writeKeyFile(da, alice);
  await writeKeyFile(db, bob);
  return { A: openOTR(da), B: openOTR(db), da, db };
}

// n OTR instances, each over a fresh dir inside `parent` holding a copy of parent's key file
// (for child processes and worker threads, which must not generate keys or remove the parent's
// dirs).
export async function openCopies(parent, n, prefix = 'c-') {
  const key = fs.readFileSync(filesIn(parent).privkeysFile);
  const out = [];
  for (let i = 0; i < n; i++) {
    const d = fs.mkdtempSync(path.join(parent, prefix));
    fs.writeFileSync(filesIn(d).privkeysFile, key, { mode: 0o600 });
    out.push(new OTR(filesIn(d)));
  }
  return out;
}

// A directory snapshot: name → { bytes, mtimeMs, mode } (files only; directories listed).
export function snapshot(dir) {
  const out = {};
  for (const name of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    const st = fs.lstatSync(p);
    out[name] = st.isFile()
      ? { bytes: fs.readFileSync(p).toString('base64'), mtimeMs: st.mtimeMs, mode: st.mode }
      : { dir: st.isDirectory(), mtimeMs: st.mtimeMs, mode: st.mode };
  }
  return out;
}

// Runs `node [flags] script args...`; resolves with { code, signal, stdout, stderr }.
export function runNode(script, args = [], { flags = [], timeoutMs = 120_000, onStdout, env, uid, gid, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...flags, script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
      uid,
      gid,
      cwd,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      stdout += d;
      onStdout?.(d, child);
    });
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(script)} ${args.join(' ')} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, child });
    });
  });
}

// Asserts a child process ended by itself with `code`: no signal (abort, segfault), no
// native assertion text on stderr.
export function assertCleanExit(result, code = 0, what = 'child') {
  assert.equal(result.signal, null, `${what}: ended by signal ${result.signal}\nstderr: ${result.stderr}`);
  assert.equal(result.code, code, `${what}: exit code ${result.code}, expected ${code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  assert.doesNotMatch(result.stderr, /Assertion|FATAL|Segmentation|core dumped|free\(\)|double free|terminate called/, `${what}: stderr ${result.stderr}`);
}

// A copy of the package (package.json, dist/, esm/, the addon this process loads) in a fresh
// world-readable temp dir, with `scripts` copied into its test/ folder: for child processes
// run as another user, who may not be able to read the checkout (a clone inside a private
// directory). Returns { root, script(name), env } — env points the child at the copied addon.
export function readablePackageCopy(scripts) {
  const root = tmpdir('otr-pkg-');
  fs.chmodSync(root, 0o755);
  fs.copyFileSync(path.join(REPO, 'package.json'), path.join(root, 'package.json'));
  for (const dir of ['dist', 'esm']) fs.cpSync(path.join(REPO, dir), path.join(root, dir), { recursive: true });
  const require = createRequire(import.meta.url);
  const addon = process.env.PROTOCOL_OTR_ADDON ? path.resolve(process.env.PROTOCOL_OTR_ADDON) : require('node-gyp-build').path(REPO);
  fs.copyFileSync(addon, path.join(root, 'protocol_otr.node'));
  fs.mkdirSync(path.join(root, 'test'));
  for (const s of scripts) fs.copyFileSync(s, path.join(root, 'test', path.basename(s)));
  const readable = (p) => {
    const st = fs.statSync(p);
    fs.chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) readable(path.join(p, n));
  };
  readable(root);
  return {
    root,
    script: (name) => path.join(root, 'test', name),
    env: { PROTOCOL_OTR_ADDON: path.join(root, 'protocol_otr.node') },
  };
}

const VALUE_CALLBACKS = ['onBeforeEncrypt', 'onAfterDecrypt', 'onIsContactLoggedIn', 'onError', 'onSmp'];

export class Party {
  constructor(net, name) {
    this.net = net;
    this.name = name;
    this.calls = []; // { name, args, channel, seq }
    this.wire = []; // everything this party's onWrite produced
    this.inbox = [];
    this.held = [];
    this.paused = false;
    this.pumping = null; // the running pump's promise
    this.readErrors = []; // { message, error }
    this.peers = [];
    this.deliver = true; // false: what onWrite produces is recorded in `wire` but not sent
    this.filter = null; // (msg) => msg | null, applied to outgoing wire text before delivery
    this.closed = false; // set by a test once close() resolved: later callbacks go to `late`
    this.late = []; // names of callbacks that ran while `closed`
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
  // The errors of reads the harness handed to the channel.
  get errors() {
    return this.readErrors.map((e) => e.error);
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
      if (!user && this.net.mode === 'none' && VALUE_CALLBACKS.includes(name)) continue;
      cbs[name] = (c, ...args) => {
        if (this.closed) this.late.push(name);
        this.calls.push({ name, args, channel: c, seq: this.net.seq++ });
        if (name === 'onWrite') this.net.deliver(this, args[0]);
        if (user) return user(c, ...args);
        const def = DEFAULT_RETURN[name];
        return def ? def(c, ...args) : undefined;
      };
    }
    return cbs;
  }

  async read(m) {
    try {
      await this.channel.read(m);
    } catch (error) {
      this.readErrors.push({ message: m, error });
    }
  }

  pump() {
    if (this.pumping || this.net.manual) return this.pumping;
    this.pumping = (async () => {
      try {
        await null;
        while (this.inbox.length && !this.paused) await this.read(this.inbox.shift());
      } finally {
        this.pumping = null;
      }
    })();
    return this.pumping;
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
  // manual: deliveries wait in the parties' inboxes until pump(). mode: the callback mode.
  constructor({ manual = false, mode = CALLBACK_MODE } = {}) {
    this.parties = {};
    this.seq = 0;
    this.manual = manual;
    this.mode = mode;
  }

  deliver(from, msg) {
    from.wire.push(msg);
    if (!from.deliver) return;
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

  // Until every queue is empty and no read is pending (automatic delivery).
  async settle() {
    if (this.manual) return this.pump();
    for (;;) {
      while (this.busy()) await Promise.all(Object.values(this.parties).map((p) => p.pumping ?? p.pump()));
      await tick();
      await tick();
      if (!this.busy()) return;
    }
  }

  // Manual delivery: hands inboxes to read(), one message at a time, until nothing moves.
  async pump(limit = 1_000_000) {
    for (let n = 0; n < limit; n++) {
      const party = Object.values(this.parties).find((p) => p.inbox.length > 0 && !p.paused);
      if (!party) return;
      await party.read(party.inbox.shift());
    }
    throw new Error('pump(): the conversation did not settle');
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

  // A party with a channel to `contact`: on `otr` when given, else on its own OTR instance
  // over `dir`. Channel options (policy, maxMessageSize, ...) go in `channel` or directly.
  // `otrOptions`: options of the party's own OTR instance (limits, budgets).
  async addParty(name, { otr, dir, account, protocol = PROTO, contact, policy, maxMessageSize, handlers, omit, channel = {}, otrOptions }) {
    const p = new Party(this, name);
    this.parties[name] = p;
    p.dir = dir;
    p.otr = otr ?? openOTR(otrOptions ? { ...filesIn(dir), ...otrOptions } : dir);
    p.account = await p.otr.account(account, protocol);
    p.contact = await p.account.contact(contact);
    // No query retries unless a test asks for them: a retry is a timer, and an AKE slowed past
    // its interval (a loaded machine, valgrind) would start a second one.
    const opts = { queryRetries: 0, ...channel, ...p.callbacks(handlers, omit) };
    if (policy !== undefined) opts.policy = policy;
    if (maxMessageSize !== undefined) opts.maxMessageSize = maxMessageSize;
    p.channel = p.contact.channel(opts);
    return p;
  }

  // Channels aName@A ↔ bName@B on existing instances, wired to each other. `a` and `b` hold
  // handlers plus optional policy / maxMessageSize / omit.
  async connect(A, aName, B, bName, a = {}, b = {}) {
    const split = ({ policy, maxMessageSize, omit, ...handlers }) => ({ policy, maxMessageSize, omit, handlers });
    const pa = await this.addParty(`${aName}>${bName}`, { otr: A, account: aName, contact: bName, ...split(a) });
    const pb = await this.addParty(`${bName}>${aName}`, { otr: B, account: bName, contact: aName, ...split(b) });
    pa.peers = [pb];
    pb.peers = [pa];
    return { a: pa, b: pb };
  }
}

// a starts the AKE; both sides must end up private (Unverified).
export async function makeSecure(net, a, b) {
  await a.channel.init();
  await net.settle();
  // What happened, should it fail: rejected reads, events, and the wire message types.
  const story = () =>
    JSON.stringify({
      errors: net.errors.map((e) => `${e.party}: ${e.error?.code} ${e.error?.message}`),
      events: [a, b].map((p) => `${p.name}: ${JSON.stringify(p.args('onEvent'))}`),
      wire: [a, b].map((p) => `${p.name}: ${p.wire.map((m) => m.slice(0, 12)).join(' ')}`),
    });
  assert.equal(a.channel.status, 'Unverified', `${a.name} private; ${story()}`);
  assert.equal(b.channel.status, 'Unverified', `${b.name} private; ${story()}`);
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
  assert.ok(err instanceof OtrError, `${what}: expected an OtrError, got ${err?.constructor?.name}: ${err?.message ?? err}`);
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
