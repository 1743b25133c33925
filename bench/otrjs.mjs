#!/usr/bin/env node
// protocol-otr benchmark suite: the pure-JavaScript reference, npm `otr` (arlolra/otr).
//
// Same scenarios and the same one-line JSON output as the C baseline
// (bench/c/baseline.c); see bench/README.md for the definitions.
//
//   node bench/otrjs.mjs <scenario> [--n N] [--repeats R] [--contacts C] [--keys DIR] [--quick]
//
// Both parties live in this process. npm `otr` has one OTR object per
// conversation side; alice's objects use alice's DSA key and instance tag, bob's
// objects bob's. The long-lived keys are libotr key files (DIR/alice.key,
// DIR/bob.key), read by loadLibotrKey below; when missing they are
// written by `bench/c/build/baseline genkeys DIR` (built on demand).
//
// npm `otr` emits every outgoing message ('io') from a setTimeout callback, so
// the wire is the event loop itself: the 'io' handler of one side calls
// receiveMsg on the other. Every call into the library (sendMsg, receiveMsg,
// sendQueryMsg, smpSecret) is timed; the longest one is reported as max_block_ms,
// the longest time the event loop was blocked by a single call.

import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  BURST,
  FRAG_MMS,
  SMP_QUESTION,
  SMP_SECRET,
  benchKeyFiles,
  blocking,
  counter as countTo,
  emitLine,
  failer,
  median,
  parseArgs,
  payload,
  r3,
} from './common.mjs';

const require = createRequire(import.meta.url);
const { DSA, OTR } = require('otr');
const OTR_VERSION = require('otr/package.json').version;

// npm otr's fragment_size is the payload per fragment; its v3 fragment header
// "?OTR|xxxxxxxx|xxxxxxxx,kkkkk,nnnnn," plus the trailing "," is at most 36
// characters, so this keeps every fragment within FRAG_MMS, like libotr's
// max_message_size.
const FRAG_PAYLOAD = FRAG_MMS - 36;

// n and repeats per scenario (pure JS is slow: smaller n than the C baseline,
// recorded in the output). contacts: concurrent conversations.
const DEFAULTS = {
  msg_oneway_16: { n: 5000, repeats: 5 },
  msg_oneway_1024: { n: 2000, repeats: 5 },
  msg_oneway_16384: { n: 150, repeats: 5 },
  conversation: { n: 400, repeats: 5 },
  ake: { n: 100, repeats: 5 },
  smp: { n: 1, repeats: 5 },
  keygen: { n: 1, repeats: 11 },
  frag: { n: 100, repeats: 5 },
  memory: { n: 200, repeats: 1 },
};

// ------------------------------------------------------------------
// keys and measurement

// libotr writes its key file with gcrypt's "advanced" s-expression printer, which prints
// each MPI in whichever form suits its bytes: #hex# usually, but as a "quoted string" (or a
// bare token) when every byte is printable. That happens to x (20 bytes, no leading 00 when
// below 2^159) for about 1 key in 285 (gcrypt's rule applied to 2 million random x), so to
// about 1 bench run in 140. npm otr's DSA.parsePrivate(text, true) decodes only #hex# and
// keeps any other form as the raw text: x becomes a string, every signature is garbage, and
// the AKE ends in "An OTR error has occurred". So the key is read here: the five MPIs of the
// first (dsa ...), in any of gcrypt's atom forms, given to the DSA constructor as bigInts.
const otrBigInt = require('otr/vendor/bigint.js');
const ATOM = String.raw`#[0-9A-Fa-f\s]*#|"(?:[^"\\]|\\[\s\S])*"|\|[A-Za-z0-9+/=\s]*\||[^\s()"#|]+`;
const ESCAPES = { b: '\b', t: '\t', v: '\v', n: '\n', f: '\f', r: '\r', '"': '"', "'": "'", '\\': '\\', '\n': '' };

function atomBytes(atom) {
  if (atom[0] === '#') return Buffer.from(atom.slice(1, -1).replace(/\s/g, ''), 'hex');
  if (atom[0] === '|') return Buffer.from(atom.slice(1, -1).replace(/\s/g, ''), 'base64');
  if (atom[0] !== '"') return Buffer.from(atom, 'latin1');
  const text = atom.slice(1, -1).replace(/\\(x[0-9A-Fa-f]{2}|[0-7]{3}|[\s\S])/g, (_, e) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]{3}$/.test(e)) return String.fromCharCode(parseInt(e, 8));
    if (!(e in ESCAPES)) throw new Error(`unknown escape \\${e}`);
    return ESCAPES[e];
  });
  return Buffer.from(text, 'latin1');
}

function loadLibotrKey(file) {
  const text = fs.readFileSync(file, 'latin1'); // gcrypt writes bytes, not UTF-8
  const dsa = text.slice(text.indexOf('(dsa'));
  const key = {};
  for (const name of ['p', 'q', 'g', 'y', 'x']) {
    const m = dsa.match(new RegExp(String.raw`\(${name}\s+(${ATOM})\s*\)`));
    if (!m) fail(`${file}: no (${name} ...) in the first (dsa ...) of this libotr key file`);
    const hex = atomBytes(m[1]).toString('hex');
    key[name] = otrBigInt.str2bigInt(hex || '0', 16);
  }
  return new DSA(key);
}

function loadKeys(dir) {
  const files = benchKeyFiles(dir);
  return { alice: loadLibotrKey(files.alice), bob: loadLibotrKey(files.bob) };
}

const timed = blocking.timed;
const fail = failer('otrjs');
const counter = (target) => countTo(target, fail);

function emit(o, unit, n, values, extra = {}) {
  emitLine('otrjs', o, unit, n, values, { otr: OTR_VERSION, ...extra });
}

// ------------------------------------------------------------------
// conversations

// One conversation: alice's OTR object for contact "bob<i>" and bob's for
// "alice<i>", wired to each other. ui(side, msg) is called for every message
// shown to the user (side 0 = alice, 1 = bob).
class Bench {
  constructor(keys, contacts, { fragment_size = 0 } = {}) {
    this.tags = { alice: OTR.makeInstanceTag(), bob: OTR.makeInstanceTag() };
    this.pairs = [];
    this.wire = 0;
    this.onUi = null;
    this.onSecure = null;
    this.onSmp = null;
    this.maxWire = 0;
    const t0 = performance.now();
    for (let i = 0; i < contacts; i++) this.pairs.push(this.makePair(keys, i, fragment_size));
    this.constructMs = performance.now() - t0;
  }

  makePair(keys, i, fragment_size) {
    const opts = (who) => ({ priv: keys[who], instance_tag: this.tags[who], fragment_size, send_interval: 0 });
    const sides = [new OTR(opts('alice')), new OTR(opts('bob'))];
    const pair = { i, sides, secure: [false, false] };
    sides.forEach((me, s) => {
      const peer = sides[1 - s];
      me.on('io', (msg) => {
        this.wire++;
        if (msg.length > this.maxWire) this.maxWire = msg.length;
        timed(() => peer.receiveMsg(msg));
      });
      me.on('ui', (msg, encrypted) => {
        if (!encrypted) fail(`unencrypted message shown on conversation ${i}`);
        this.onUi?.(pair, s, msg);
      });
      me.on('status', (st) => {
        if (st === OTR.CONST.STATUS_AKE_SUCCESS && !pair.secure[s]) {
          pair.secure[s] = true;
          this.onSecure?.(pair, s);
        }
      });
      me.on('smp', (type, data) => this.onSmp?.(pair, s, type, data));
      me.on('error', (err, severity) => fail(`conversation ${i} side ${s}: ${severity}: ${err}`));
    });
    return pair;
  }

  // Run AKEs on the given pairs; resolves when both sides of each are encrypted.
  async ake(pairs = this.pairs) {
    const c = counter(pairs.length * 2);
    this.onSecure = () => c.hit();
    for (const p of pairs) timed(() => p.sides[0].sendQueryMsg());
    await c.done;
    this.onSecure = null;
    for (const p of pairs) {
      for (const side of p.sides) {
        if (side.msgstate !== OTR.CONST.MSGSTATE_ENCRYPTED || side.ake.otr_version !== OTR.CONST.OTR_VERSION_3)
          fail(`conversation ${p.i} not encrypted with v3`);
      }
    }
  }
}

// ------------------------------------------------------------------
// scenarios

async function oneway(o, keys, len, fragment_size) {
  const values = [];
  let wirePerMsg = 0;
  let maxWire = 0;
  let block = 0;
  for (let r = 0; r < o.repeats; r++) {
    const b = new Bench(keys, 1, { fragment_size });
    await b.ake();
    const [alice] = b.pairs[0].sides;
    let expect = [];
    let got = 0;
    let burst;
    b.onUi = (pair, s, msg) => {
      if (s !== 1 || msg !== expect[got % BURST]) fail(`payload mismatch at message ${got}`);
      got++;
      burst.hit();
    };
    const wire0 = b.wire;
    b.maxWire = 0;
    blocking.max = 0;
    const t0 = performance.now();
    for (let sent = 0; sent < o.n;) {
      const k = Math.min(BURST, o.n - sent);
      burst = counter(k);
      expect = [];
      for (let j = 0; j < k; j++) {
        const text = payload(len, sent + j);
        expect.push(text);
        timed(() => alice.sendMsg(text));
      }
      sent += k;
      await burst.done;
    }
    const t1 = performance.now();
    if (got !== o.n) fail('lost messages');
    block = Math.max(block, blocking.max);
    values.push(o.n / ((t1 - t0) / 1000));
    wirePerMsg = (b.wire - wire0) / o.n;
    maxWire = b.maxWire;
  }
  const extra = { payload_bytes: len, wire_messages_per_msg: r3(wirePerMsg), max_block_ms: r3(block) };
  if (fragment_size) Object.assign(extra, { max_message_size: FRAG_MMS, max_wire_message: maxWire });
  emit(o, 'msg/s', o.n, values, extra);
}

async function conversation(o, keys) {
  const c = o.contacts;
  let perConv = Math.floor(o.n / c);
  perConv += perConv % 2; // even: every round starts with alice
  perConv = Math.max(2, perConv);
  const total = perConv * c;
  const text = (i, k) => `c${String(i).padStart(5, '0')} m${String(k).padStart(8, '0')}`; // 16 bytes
  const b = new Bench(keys, c);
  const sent = new Array(c).fill(0);
  let until = 0;
  let round = null;
  b.onUi = (pair, s, msg) => {
    const k = sent[pair.i] - 1; // the message just delivered
    if (k % 2 !== (s === 0 ? 1 : 0)) fail('conversation out of order');
    if (msg !== text(pair.i, k)) fail('conversation payload mismatch');
    round.hit();
    if (sent[pair.i] < until) {
      // the receiver replies, once receiveMsg has returned
      const next = text(pair.i, sent[pair.i]++);
      queueMicrotask(() => timed(() => pair.sides[s].sendMsg(next)));
    }
  };
  // every conversation exchanges `count` more messages, alice first
  const conversationRound = async (count) => {
    until += count;
    round = counter(count * c);
    for (const p of b.pairs) {
      const first = text(p.i, sent[p.i]++);
      timed(() => p.sides[0].sendMsg(first));
    }
    await round.done;
  };
  // setup, untimed: the AKEs, then one exchange each way so that the measured
  // rounds see the steady state (every message rotates keys)
  await b.ake();
  await conversationRound(2);
  const values = [];
  let block = 0;
  for (let r = 0; r < o.repeats; r++) {
    blocking.max = 0;
    const t0 = performance.now();
    await conversationRound(perConv);
    values.push(total / ((performance.now() - t0) / 1000));
    block = Math.max(block, blocking.max);
  }
  emit(o, 'msg/s', total, values, {
    conversations: c,
    messages_per_conversation: perConv,
    max_block_ms: r3(block),
  });
}

async function ake(o, keys) {
  const values = [];
  const construct = [];
  blocking.max = 0;
  for (let r = 0; r < o.repeats; r++) {
    const b = new Bench(keys, o.n);
    construct.push(b.constructMs);
    const t0 = performance.now();
    await b.ake();
    values.push(o.n / ((performance.now() - t0) / 1000));
  }
  // constructing an OTR object makes two DH key pairs; it is done before the
  // clock starts (libotr creates its contexts lazily, inside the timed region)
  emit(o, 'AKE/s', o.n, values, { construct_ms_per_conversation: r3(median(construct) / o.n), max_block_ms: r3(blocking.max) });
}

async function smp(o, keys) {
  const b = new Bench(keys, 1);
  await b.ake();
  const [alice, bob] = b.pairs[0].sides;
  const values = [];
  blocking.max = 0;
  for (let r = 0; r < o.repeats; r++) {
    const c = counter(2);
    b.onSmp = (pair, s, type, data) => {
      if (type === 'question') {
        if (s !== 1 || data !== SMP_QUESTION) fail('SMP question mismatch');
        queueMicrotask(() => timed(() => bob.smpSecret(SMP_SECRET)));
      } else if (type === 'trust') {
        if (data !== true) fail('SMP failed');
        c.hit();
      } else fail(`unexpected SMP event ${type}`);
    };
    const t0 = performance.now();
    timed(() => alice.smpSecret(SMP_SECRET, SMP_QUESTION));
    await c.done;
    values.push(performance.now() - t0);
  }
  emit(o, 'ms', 1, values, { max_block_ms: r3(blocking.max) });
}

async function keygen(o) {
  const values = [];
  for (let r = 0; r < o.repeats; r++) {
    const t0 = performance.now();
    // nocache: npm otr otherwise keeps p, q, g for the process and later keys
    // only draw x; libotr generates fresh domain parameters for every key
    const key = new DSA(null, { nocache: true });
    values.push(performance.now() - t0);
    if (!key.x || !key.y) fail('keygen produced no key');
  }
  emit(o, 'ms', 1, values, { bits: 1024, max_block_ms: r3(Math.max(...values)) });
}

async function memory(o, keys) {
  // run.mjs starts us with --expose-gc; otherwise enable it now
  if (!globalThis.gc) v8.setFlagsFromString('--expose-gc');
  const gc = globalThis.gc ?? vm.runInNewContext('gc');
  const settle = () => {
    for (let i = 0; i < 4; i++) gc();
  };
  const c = o.n;
  const values = [];
  let heapPc = 0;
  let rssPc = 0;
  for (let r = 0; r < o.repeats; r++) {
    settle();
    const m0 = process.memoryUsage();
    // creating the OTR objects is part of what a secure context costs here
    const b = new Bench(keys, c);
    for (let i = 0; i < c; i += 100) await b.ake(b.pairs.slice(i, i + 100));
    // let pending io timers finish before measuring
    await new Promise((res) => setTimeout(res, 20));
    settle();
    const m1 = process.memoryUsage();
    const heap = (m) => m.heapUsed + m.external + m.arrayBuffers;
    heapPc = (heap(m1) - heap(m0)) / (2 * c);
    rssPc = (m1.rss - m0.rss) / (2 * c);
    values.push(rssPc);
    if (b.pairs.length !== c) fail('lost conversations'); // keeps b alive past the measurement
  }
  emit(o, 'bytes', c, values, {
    value: Math.round(median(values) * 10) / 10,
    conversations: c,
    contexts: 2 * c,
    heap_bytes_per_context: Math.round(heapPc * 10) / 10,
    rss_bytes_per_context: Math.round(rssPc * 10) / 10,
  });
}

// ------------------------------------------------------------------

const o = parseArgs(process.argv.slice(2), 'otrjs.mjs', DEFAULTS);
let finished = false;
process.on('exit', (code) => {
  if (!finished) {
    process.stderr.write('otrjs: event loop drained before the scenario finished (lost message?)\n');
    if (code === 0) process.exitCode = 1;
  }
});
const keys = o.scenario === 'keygen' ? null : loadKeys(o.keys);

async function run(o) {
  switch (o.scenario) {
    case 'msg_oneway_16':
      await oneway(o, keys, 16, 0);
      break;
    case 'msg_oneway_1024':
      await oneway(o, keys, 1024, 0);
      break;
    case 'msg_oneway_16384':
      await oneway(o, keys, 16384, 0);
      break;
    case 'frag':
      await oneway(o, keys, 16384, FRAG_PAYLOAD);
      break;
    case 'conversation':
      await conversation(o, keys);
      break;
    case 'ake':
      await ake(o, keys);
      break;
    case 'smp':
      await smp(o, keys);
      break;
    case 'keygen':
      await keygen(o);
      break;
    case 'memory':
      await memory(o, keys);
      break;
  }
}

// One unrecorded warm-up pass lets V8 compile the hot paths first: the full
// size for the message scenarios, a quarter (and a tenth of the contacts) for
// the big-number ones; none for keygen (one long call) and memory.
o.warmup = !o.quick && o.scenario !== 'keygen' && o.scenario !== 'memory';
if (o.warmup) {
  const bignum = o.scenario === 'conversation' || o.scenario === 'ake' || o.scenario === 'smp';
  const n = Math.max(1, Math.floor(bignum ? o.n / 4 : o.n));
  const contacts = Math.max(1, Math.floor(o.contacts / 10));
  await run({ ...o, silent: true, repeats: 1, n, contacts });
}
await run(o);
finished = true;
