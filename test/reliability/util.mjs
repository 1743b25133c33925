// Shared helpers for the reliability tests (lifetimes, crash-safe files, load, hostile peers).
// Real libotr, real files in temp dirs, no mocks. Importing this module has no side effects,
// so `node --test test/` running it on its own is harmless.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { OTR, OtrError } from 'protocol-otr';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CHILDREN = path.join(HERE, 'children');
export const LONG = process.env.OTR_LONG === '1';
export const PROTO = 'prpl-jabber';

const dirs = [];
const opened = new Set();

export function tmpdir(prefix = 'otr-rel-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

// The three file names, as the main suite's harness lays them out.
import { filesIn } from '../helpers/harness.mjs';

export { filesIn };

export function open(dir) {
  const otr = new OTR(filesIn(dir));
  opened.add(otr);
  return otr;
}

export async function cleanup() {
  const all = [...opened];
  opened.clear();
  await Promise.all(all.map((o) => o.close().catch(() => {})));
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const tick = () => new Promise((r) => setImmediate(r));

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

export async function settleGc() {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(10);
  }
}

// One generated DSA key (per process) reused under many account names: key files with
// hundreds of accounts without hundreds of key generations.
let keyTemplate;
export async function keyTemplateText() {
  if (!keyTemplate) {
    keyTemplate = (async () => {
      const d = tmpdir('otr-rel-key-');
      const otr = new OTR(filesIn(d));
      await otr.account('template@example.org', PROTO);
      await otr.close();
      const text = fs.readFileSync(filesIn(d).privkeysFile, 'utf8');
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
  fs.writeFileSync(file, `(privkeys\n${body})\n`, { mode: 0o600 });
  return file;
}

// Runs `node [flags] script args...`; resolves with { code, signal, stdout, stderr }.
export function runNode(script, args = [], { flags = [], timeoutMs = 120_000, onStdout, env, uid, gid } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...flags, script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
      uid,
      gid,
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
    child.on('error', reject);
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

// Expects an OtrError with one of the codes (thrown or rejected).
export async function rejectsCode(promiseOrFn, code, what = '') {
  const codes = Array.isArray(code) ? code : [code];
  let error;
  try {
    await (typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn);
  } catch (e) {
    error = e;
  }
  assert.ok(error, `${what}: expected OtrError ${codes.join('|')}, but it succeeded`);
  assert.ok(error instanceof OtrError, `${what}: expected an OtrError, got ${error?.constructor?.name}: ${error?.message}`);
  assert.ok(codes.includes(error.code), `${what}: expected ${codes.join('|')}, got ${error.code}: ${error.message}`);
  assert.ok(error.message.length > 0);
  return error;
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

// A two-party conversation over explicit queues: every onWrite goes to the peer's inbox, and
// pump() hands inboxes to read() in order until nothing moves. Callbacks are recorded.
export class Link {
  constructor() {
    this.sides = [];
  }

  // handlers: any channel callbacks; onWrite/onRead/onEvent/onSmpEvent are recorded too.
  // Every callback after `side.closed = true` is recorded in side.late.
  side(name, channelFactory, handlers = {}) {
    const side = { name, inbox: [], wire: [], got: [], events: [], smp: [], errors: [], late: [], secure: 0, channel: null, peer: null, deliver: true, closed: false };
    const record = {
      onWrite: (c, m) => {
        side.wire.push(m);
        if (side.deliver && side.peer) side.peer.inbox.push(m);
      },
      onRead: (c, m) => side.got.push(m),
      onEvent: (c, code, m) => side.events.push([code, m]),
      onSmpEvent: (c, code, progress) => side.smp.push([code, progress]),
      onGoneSecure: () => side.secure++,
    };
    const options = {};
    for (const name of ['onWrite', 'onRead', 'onEvent', 'onSmpEvent', 'onGoneSecure', 'onGoneInsecure', 'onStillSecure',
      'onUnverifiedFingerprint', 'onSymkey', 'onTimer', 'onSmp', 'onError', 'onBeforeEncrypt', 'onAfterDecrypt', 'onIsContactLoggedIn']) {
      const mine = record[name];
      const theirs = handlers[name];
      if (!mine && !theirs && !['onGoneInsecure', 'onStillSecure', 'onUnverifiedFingerprint', 'onSymkey'].includes(name)) continue;
      options[name] = (c, ...args) => {
        if (side.closed) side.late.push(name);
        mine?.(c, ...args);
        return theirs?.(c, ...args);
      };
    }
    for (const k of ['policy', 'maxMessageSize']) if (handlers[k] !== undefined) options[k] = handlers[k];
    side.channel = channelFactory(options);
    this.sides.push(side);
    return side;
  }

  static pair(a, b) {
    a.peer = b;
    b.peer = a;
  }

  async pump(limit = 100_000) {
    for (let n = 0; n < limit; n++) {
      const side = this.sides.find((s) => s.inbox.length > 0);
      if (!side) return;
      const m = side.inbox.shift();
      try {
        await side.channel.read(m);
      } catch (error) {
        side.errors.push(error);
      }
    }
    throw new Error('pump(): conversation did not settle');
  }
}

// Two OTR instances over fresh dirs whose key files hold the given accounts (no keygen).
export async function twoInstances({ alice = ['alice@example.org'], bob = ['bob@example.org'] } = {}) {
  const da = tmpdir('otr-rel-a-');
  const db = tmpdir('otr-rel-b-');
  await writeKeyFile(da, alice);
  await writeKeyFile(db, bob);
  const A = open(da);
  const B = open(db);
  return { A, B, da, db };
}

// Channels aName@A ↔ bName@B on `link`; returns the two sides.
export async function connect(link, A, aName, B, bName, handlersA = {}, handlersB = {}) {
  const [aa, bb] = await Promise.all([A.account(aName, PROTO), B.account(bName, PROTO)]);
  const [ca, cb] = await Promise.all([aa.contact(bName), bb.contact(aName)]);
  const a = link.side(`${aName}>${bName}`, (o) => ca.channel(o), handlersA);
  const b = link.side(`${bName}>${aName}`, (o) => cb.channel(o), handlersB);
  Link.pair(a, b);
  return { a, b };
}

export async function makeSecure(link, a, b) {
  await a.channel.init();
  await link.pump();
  assert.equal(a.channel.status, 'Unverified', `${a.name} private`);
  assert.equal(b.channel.status, 'Unverified', `${b.name} private`);
}

// n OTR instances, each over a fresh dir inside `parent` holding a copy of parent's key file
// (for child processes and workers, which must not generate keys or clean up the parent's dirs).
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
