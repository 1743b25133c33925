#!/usr/bin/env node
// protocol-otr benchmark suite: this library, through its public API only.
//
// Same scenarios and the same one-line JSON output as bench/c/baseline.c and
// bench/otrjs.mjs; see bench/README.md for the definitions.
//
//   node bench/protocol-otr.mjs <scenario> [--n N] [--repeats R] [--contacts C] [--keys DIR] [--quick]
//
// Two OTR instances (alice, bob) live in this process, sharing its pool of threads. The wire
// is each channel's onWrite handing the text to the peer channel's read() (not awaited: calls
// for one contact run in the order they were made). Keys are the libotr key files
// DIR/alice.key and DIR/bob.key, copied in as each instance's private key file.
//
// Every scenario also reports how the event loop fared while it ran: perf_hooks'
// monitorEventLoopDelay (p50/p99/max, ms) over the timed repeats, and max_block_ms, the
// longest single synchronous call into the library's public API.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { OTR, SmpEvent, libotr, setThreads } from 'protocol-otr';
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
  parseArgs,
  payload,
  processCounters,
  addThreadCpu,
  threadCpu,
  r3,
} from './common.mjs';
import { fanin, faninFloor, paced } from './bulk.mjs';
import { flood } from './flood.mjs';

const PROTOCOL = 'bench';

const DEFAULTS = {
  msg_oneway_16: { n: 200000, repeats: 5 },
  msg_oneway_1024: { n: 100000, repeats: 5 },
  msg_oneway_16384: { n: 10000, repeats: 5 },
  conversation: { n: 1000, repeats: 5 },
  latency_under_load: { n: 250, repeats: 1 },
  ake: { n: 100, repeats: 5 },
  smp: { n: 1, repeats: 5 },
  keygen: { n: 1, repeats: 11 },
  frag: { n: 5000, repeats: 5 },
  memory: { n: 10000, repeats: 1 },
  flood: { n: 2000, repeats: 8 },
  fanin: { n: 200, repeats: 5 },
  fanin_floor: { n: 200, repeats: 5 },
  paced: { n: 5000, repeats: 1 },
};

// ------------------------------------------------------------------
// measurement

const timed = blocking.timed;
const fail = failer('protocol-otr bench');
const counter = (target) => countTo(target, fail);

// While measuring: the event loop's delay, and the CPU time of the whole process (the JS
// thread and protocol-otr's threads), which the machine's other load does not inflate the way
// it does wall-clock rates.
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
let cpuStart;
let cpuMicros = 0;
// The process's context switches and allocations inside the measured windows.
let countersStart;
const counted = { switches: 0, allocs: 0 };
// The CPU time of each group of threads inside the measured windows (common.mjs, threadCpu).
let threadsStart;
const threadNs = {};
// V8's garbage-collection pauses, which stop the event loop too: what explains a loop delay
// the library's own work does not.
const gcPauses = []; // [start, duration] in ms
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcPauses.push([entry.startTime, entry.duration]);
}).observe({ entryTypes: ['gc'] });
const windows = []; // measured [start, end] in ms
function measuring(on) {
  if (on) {
    loopDelay.enable();
    cpuStart = process.cpuUsage();
    countersStart = processCounters();
    threadsStart = threadCpu();
    windows.push([performance.now(), Infinity]);
  } else {
    loopDelay.disable();
    addThreadCpu(threadNs, threadsStart, threadCpu());
    const used = process.cpuUsage(cpuStart);
    cpuMicros += used.user + used.system;
    const now = processCounters();
    counted.switches += now.switches - countersStart.switches;
    counted.allocs = now.allocs === null ? null : counted.allocs + now.allocs - countersStart.allocs;
    windows.at(-1)[1] = performance.now();
  }
}

function gcFigures() {
  const inside = gcPauses.filter(([start]) => windows.some(([from, to]) => start >= from && start <= to));
  const measured = windows.reduce((sum, [from, to]) => sum + (Math.min(to, performance.now()) - from), 0);
  const total = inside.reduce((sum, [, d]) => sum + d, 0);
  return {
    gc_pauses: inside.length,
    gc_max_ms: r3(Math.max(0, ...inside.map(([, d]) => d))),
    gc_share: measured > 0 ? r3(total / measured) : 0,
  };
}

function emit(o, unit, n, values, extra = {}) {
  const ms = (ns) => r3(ns / 1e6);
  emitLine('protocol-otr', o, unit, n, values, {
    libotr: libotr.version,
    eld_p50_ms: ms(loopDelay.percentile(50)),
    eld_p99_ms: ms(loopDelay.percentile(99)),
    eld_max_ms: ms(loopDelay.max),
    max_block_ms: r3(blocking.max),
    ...gcFigures(),
    threads: threadCount,
    cpu_us_per_op: r3(cpuMicros / (n * values.length)),
    cpu_us_per_op_by_thread: Object.fromEntries(Object.entries(threadNs).map(([group, ns]) => [group, r3(ns / 1000 / (n * values.length))])),
    switches_per_op: r3(counted.switches / (n * values.length)),
    allocs_per_op: counted.allocs === null ? null : r3(counted.allocs / (n * values.length)),
    ...extra,
  });
}

// ------------------------------------------------------------------
// parties

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'protocol-otr-bench-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));
let instances = 0;

// A fresh OTR instance for `who`, whose private key file is a copy of the bench key.
async function party(who, keyFile, options = {}) {
  const dir = path.join(scratch, `${who}-${++instances}`);
  fs.mkdirSync(dir);
  const files = {
    privkeysFile: path.join(dir, 'otr.private_key'),
    contactsFile: path.join(dir, 'otr.fingerprints'),
    instanceTagsFile: path.join(dir, 'otr.instance_tags'),
  };
  if (keyFile) {
    fs.copyFileSync(keyFile, files.privkeysFile);
    fs.chmodSync(files.privkeysFile, 0o600); // a key others can read is refused
  }
  const otr = new OTR({ ...files, ...options });
  otr.on('error', (error) => fail(`${who}: ${error.code}: ${error.message}`));
  const account = await otr.account(who, PROTOCOL);
  return { otr, account };
}

// Conversation i: alice's contact "bob<i>" and bob's contact "alice<i>", each channel's
// wire output read by the other. hooks.read(pair, side, text) sees every message shown.
class Bench {
  constructor(alice, bob, { maxMessageSize = 0 } = {}) {
    this.sides = [alice, bob];
    this.maxMessageSize = maxMessageSize;
    this.pairs = [];
    this.maxWire = 0;
    this.wire = 0;
    this.onRead = null;
    this.onSecure = null;
    this.onSmpEvent = null;
  }

  async add(i) {
    const pair = { i, channels: [], secure: [false, false] };
    const names = [`bob${i}`, `alice${i}`];
    const contacts = await Promise.all(this.sides.map((s, k) => s.account.contact(names[k])));
    contacts.forEach((contact, s) => {
      pair.channels[s] = contact.channel({
        maxMessageSize: this.maxMessageSize,
        onWrite: (c, message) => {
          this.wire++;
          if (message.length > this.maxWire) this.maxWire = message.length;
          timed(() => pair.channels[1 - s].read(message)).catch((e) => fail(`read: ${e.message}`));
        },
        onRead: (c, message) => this.onRead?.(pair, s, message),
        onGoneSecure: () => {
          this.onAnySecure?.(pair, s);
          if (pair.secure[s]) return;
          pair.secure[s] = true;
          this.onSecure?.(pair, s);
        },
        onSmp: () => SMP_SECRET,
        onSmpEvent: (c, code) => this.onSmpEvent?.(pair, s, code),
        onEvent: (c, code, message) => {
          if (code !== 10 && code !== 11) fail(`conversation ${i} side ${s}: event ${code} ${message ?? ''}`);
        },
      });
    });
    this.pairs.push(pair);
    return pair;
  }

  async ake(pairs = this.pairs) {
    const c = counter(pairs.length * 2);
    this.onSecure = () => c.hit();
    for (const p of pairs) timed(() => p.channels[0].init()).catch((e) => fail(`init: ${e.message}`));
    await c.done;
    this.onSecure = null;
    for (const p of pairs) {
      for (const ch of p.channels) if (ch.status !== 'Unverified') fail(`conversation ${p.i} is ${ch.status}`);
    }
  }
}

// ------------------------------------------------------------------
// scenarios

async function oneway(o, keys, len, maxMessageSize) {
  const values = [];
  let b;
  let wireBefore = 0;
  let wirePerMessage = 0;
  for (let r = 0; r < o.repeats; r++) {
    // fresh sessions per repeat
    const alice = await party('alice', keys.alice);
    const bob = await party('bob', keys.bob);
    b = new Bench(alice, bob, { maxMessageSize });
    const pair = await b.add(0);
    await b.ake();
    const messages = Array.from({ length: Math.min(o.n, 1000) }, (_, i) => payload(len, i));
    let received = 0;
    let window = null;
    b.onRead = (p, side, text) => {
      if (side !== 1) fail('message shown to the sender');
      if (text !== messages[received % messages.length]) fail(`message ${received} differs`);
      received++;
      if (window && received >= window.target) window.resolve();
    };
    const sender = pair.channels[0];
    wireBefore = b.wire;
    measuring(true);
    const t0 = performance.now();
    for (let sent = 0; sent < o.n;) {
      const burst = Math.min(BURST, o.n - sent);
      const done = new Promise((resolve) => (window = { target: sent + burst, resolve }));
      for (let k = 0; k < burst; k++, sent++) {
        timed(() => sender.write(messages[sent % messages.length])).catch((e) => fail(`write: ${e.message}`));
      }
      await done;
    }
    const t1 = performance.now();
    measuring(false);
    wirePerMessage = (b.wire - wireBefore) / o.n;
    values.push(o.n / ((t1 - t0) / 1000));
    await Promise.all([alice.otr.close(), bob.otr.close()]);
  }
  const extra = { payload_bytes: len, wire_messages_per_msg: r3(wirePerMessage) };
  if (maxMessageSize) Object.assign(extra, { max_message_size: maxMessageSize, max_wire_message: b.maxWire });
  emit(o, 'msg/s', o.n, values, extra);
}

async function conversation(o, keys) {
  const contacts = o.contacts;
  const perConv = Math.max(2, Math.round(o.n / contacts / 2) * 2);
  const alice = await party('alice', keys.alice);
  const bob = await party('bob', keys.bob);
  const b = new Bench(alice, bob);
  for (let i = 0; i < contacts; i++) await b.add(i);
  await b.ake();
  const text = (k) => payload(16, k);
  // one exchange each way, untimed
  await runExchanges(b, 2);
  const values = [];
  measuring(true);
  for (let r = 0; r < o.repeats; r++) {
    const t0 = performance.now();
    await runExchanges(b, perConv);
    const t1 = performance.now();
    values.push((contacts * perConv) / ((t1 - t0) / 1000));
  }
  measuring(false);
  emit(o, 'msg/s', contacts * perConv, values, { conversations: contacts, messages_per_conversation: perConv });
  await Promise.all([alice.otr.close(), bob.otr.close()]);

  // Every conversation exchanges `count` messages, strictly alternating: each reply is
  // written when the previous message has been read, so every message rotates DH keys.
  function runExchanges(bench, count) {
    const c = counter(bench.pairs.length);
    const seen = new Map(bench.pairs.map((p) => [p, 0]));
    bench.onRead = (p, side, message) => {
      const k = seen.get(p);
      if (message !== text(k)) fail(`conversation ${p.i}: message ${k} differs`);
      if ((k % 2 === 0) !== (side === 1)) fail(`conversation ${p.i}: out of turn`);
      seen.set(p, k + 1);
      if (k + 1 === count) return c.hit();
      timed(() => p.channels[side].write(text(k + 1))).catch((e) => fail(`write: ${e.message}`));
    };
    for (const p of bench.pairs) timed(() => p.channels[0].write(text(0))).catch((e) => fail(`write: ${e.message}`));
    return c.done;
  }
}

async function ake(o, keys) {
  const values = [];
  for (let r = 0; r < o.repeats; r++) {
    const alice = await party('alice', keys.alice);
    const bob = await party('bob', keys.bob);
    const b = new Bench(alice, bob);
    for (let i = 0; i < o.n; i++) await b.add(i);
    measuring(true);
    const t0 = performance.now();
    await b.ake();
    const t1 = performance.now();
    measuring(false);
    values.push(o.n / ((t1 - t0) / 1000));
    await Promise.all([alice.otr.close(), bob.otr.close()]);
  }
  emit(o, 'AKE/s', o.n, values);
}

async function smp(o, keys) {
  const alice = await party('alice', keys.alice);
  const bob = await party('bob', keys.bob);
  const b = new Bench(alice, bob);
  const pair = await b.add(0);
  await b.ake();
  const values = [];
  measuring(true);
  for (let r = 0; r < o.repeats; r++) {
    const c = counter(2);
    b.onSmpEvent = (p, side, code) => {
      if (code === SmpEvent.SUCCESS) c.hit();
      else if (code !== SmpEvent.IN_PROGRESS && code !== SmpEvent.ASK_FOR_ANSWER) fail(`SMP event ${code} on side ${side}`);
    };
    const t0 = performance.now();
    timed(() => pair.channels[0].smpVerify(SMP_SECRET, SMP_QUESTION)).catch((e) => fail(`smpVerify: ${e.message}`));
    await c.done;
    values.push(performance.now() - t0);
  }
  measuring(false);
  if (pair.channels[0].status !== 'Private') fail(`after SMP alice is ${pair.channels[0].status}`);
  emit(o, 'ms', 1, values);
  await Promise.all([alice.otr.close(), bob.otr.close()]);
}

async function keygen(o) {
  const values = [];
  measuring(true);
  for (let r = 0; r < o.repeats; r++) {
    const dir = path.join(scratch, `keygen-${r}`);
    fs.mkdirSync(dir);
    const otr = new OTR({
      privkeysFile: path.join(dir, 'otr.private_key'),
      contactsFile: path.join(dir, 'otr.fingerprints'),
      instanceTagsFile: path.join(dir, 'otr.instance_tags'),
    });
    const t0 = performance.now();
    await timed(() => otr.account(`key${r}`, PROTOCOL));
    values.push(performance.now() - t0);
    await otr.close();
  }
  measuring(false);
  emit(o, 'ms', 1, values, { bits: 1024 });
}

async function memory(o, keys) {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  const settle = async () => {
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 4; i++) gc();
  };
  const c = o.n;
  const alice = await party('alice', keys.alice);
  const bob = await party('bob', keys.bob);
  const b = new Bench(alice, bob);
  await settle();
  const m0 = process.memoryUsage();
  measuring(true);
  for (let i = 0; i < c; i += 100) {
    const batch = [];
    for (let k = i; k < Math.min(c, i + 100); k++) batch.push(await b.add(k));
    await b.ake(batch);
  }
  measuring(false);
  await settle();
  const m1 = process.memoryUsage();
  const heap = (m) => m.heapUsed + m.external + m.arrayBuffers;
  const heapPc = (heap(m1) - heap(m0)) / (2 * c);
  const rssPc = (m1.rss - m0.rss) / (2 * c);
  if (b.pairs.length !== c) fail('lost conversations');
  emit(o, 'bytes', c, [rssPc], {
    value: Math.round(rssPc * 10) / 10,
    conversations: c,
    contexts: 2 * c,
    heap_bytes_per_context: Math.round(heapPc * 10) / 10,
    rss_bytes_per_context: Math.round(rssPc * 10) / 10,
  });
  await Promise.all([alice.otr.close(), bob.otr.close()]);
}

// A bridge (alice: one account) and its peers (bob): 40 background conversations loop —
// a turn each way (a DH rotation), every 5th turn also refresh() (an AKE), every 8th also an
// SMP — while one probe conversation's peer sends 1 KB to the bridge every 20 ms, timed from
// write() to the bridge's onRead. The probe is timed alone first, then under that load.
async function latencyUnderLoad(o, keys) {
  const BACKGROUND = o.quick ? 10 : 40;
  const samples = o.n;
  // Each background conversation refreshes and verifies as fast as it can: far more key work
  // than the per-contact budget against hostile contacts allows (30 per 10 s), which this
  // trusted load is not meant to measure.
  const trusted = { maxKeyWorkPerContact: 1_000_000 };
  const alice = await party('alice', keys.alice, trusted);
  const bob = await party('bob', keys.bob, trusted);
  const b = new Bench(alice, bob);
  for (let i = 0; i <= BACKGROUND; i++) await b.add(i);
  await b.ake();
  const probe = b.pairs[BACKGROUND];
  const background = b.pairs.slice(0, BACKGROUND);
  const probeText = payload(1024, 0);
  let probeWaiting = null;
  const waiters = new Map(); // pair → what its loop waits for
  const counts = { turns: 0, refreshes: 0, smps: 0 };
  b.onRead = (pair, side, message) => {
    if (pair === probe) {
      if (side !== 0 || message !== probeText) fail('probe message differs');
      probeWaiting?.(performance.now());
      return;
    }
    if (side === 1) {
      timed(() => pair.channels[1].write(`re ${message}`)).catch((e) => fail(`write: ${e.message}`));
    } else {
      waiters.get(pair)?.read?.();
    }
  };
  b.onAnySecure = (pair) => waiters.get(pair)?.secure?.();
  b.onSmpEvent = (pair, side, code) => {
    if (code === SmpEvent.SUCCESS) waiters.get(pair)?.smp?.();
    else if (code !== SmpEvent.IN_PROGRESS && code !== SmpEvent.ASK_FOR_ANSWER) fail(`SMP event ${code}`);
  };
  const until = (pair, key, count) =>
    new Promise((resolve) => {
      let left = count;
      waiters.set(pair, { [key]: () => --left === 0 && resolve() });
    });
  let stop = false;
  async function loop(pair) {
    for (let k = 1; !stop; k++) {
      const read = until(pair, 'read', 1);
      timed(() => pair.channels[0].write(`turn ${k}`)).catch((e) => fail(`write: ${e.message}`));
      await read;
      counts.turns++;
      if (k % 5 === 0 && !stop) {
        const secure = until(pair, 'secure', 2);
        timed(() => pair.channels[0].refresh()).catch((e) => fail(`refresh: ${e.message}`));
        await secure;
        counts.refreshes++;
      }
      if (k % 8 === 0 && !stop) {
        const done = until(pair, 'smp', 2);
        timed(() => pair.channels[0].smpVerify(SMP_SECRET, SMP_QUESTION)).catch((e) => fail(`smpVerify: ${e.message}`));
        await done;
        counts.smps++;
      }
    }
  }
  async function probeRun(n) {
    const latencies = [];
    for (let k = 0; k < n; k++) {
      await new Promise((r) => setTimeout(r, 20));
      const t0 = performance.now();
      const arrived = new Promise((resolve) => (probeWaiting = resolve));
      timed(() => probe.channels[1].write(probeText)).catch((e) => fail(`probe write: ${e.message}`));
      latencies.push((await arrived) - t0);
    }
    return latencies.sort((x, y) => x - y);
  }
  const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  const alone = await probeRun(Math.max(20, Math.floor(samples / 2)));
  const loops = background.map((pair) => loop(pair));
  await new Promise((r) => setTimeout(r, 500)); // the load is running
  measuring(true);
  const before = { ...counts };
  const t0 = performance.now();
  const loaded = await probeRun(samples);
  const seconds = (performance.now() - t0) / 1000;
  measuring(false);
  stop = true;
  await Promise.all(loops);
  const rate = (key) => r3((counts[key] - before[key]) / seconds);
  emit(o, 'ms', samples, [pct(loaded, 99)], {
    alone_p50_ms: r3(pct(alone, 50)),
    alone_p99_ms: r3(pct(alone, 99)),
    load_p50_ms: r3(pct(loaded, 50)),
    load_p99_ms: r3(pct(loaded, 99)),
    load_max_ms: r3(loaded.at(-1)),
    background: BACKGROUND,
    turns_per_s: rate('turns'),
    refreshes_per_s: rate('refreshes'),
    smps_per_s: rate('smps'),
  });
  await Promise.all([alice.otr.close(), bob.otr.close()]);
}

// ------------------------------------------------------------------

const o = parseArgs(process.argv.slice(2), 'protocol-otr.mjs', DEFAULTS);
if (o.threads) setThreads(o.threads);
const threadCount = o.threads ?? os.availableParallelism();
const keys = o.scenario === 'keygen' ? null : benchKeyFiles(o.keys);

async function run(opts) {
  switch (opts.scenario) {
    case 'msg_oneway_16':
      return oneway(opts, keys, 16, 0);
    case 'msg_oneway_1024':
      return oneway(opts, keys, 1024, 0);
    case 'msg_oneway_16384':
      return oneway(opts, keys, 16384, 0);
    case 'frag':
      return oneway(opts, keys, 16384, FRAG_MMS);
    case 'conversation':
      return conversation(opts, keys);
    case 'ake':
      return ake(opts, keys);
    case 'smp':
      return smp(opts, keys);
    case 'keygen':
      return keygen(opts);
    case 'memory':
      return memory(opts, keys);
    case 'latency_under_load':
      return latencyUnderLoad(opts, keys);
    case 'flood':
      return flood(opts, { party, keys, fail, timed, measuring, emit });
    case 'fanin':
      return fanin(opts, { party, keys, fail, timed, measuring, emit, Bench });
    case 'fanin_floor':
      return faninFloor(opts, { fail, measuring, emit });
    case 'paced':
      return paced(opts, { party, keys, fail, timed, measuring, emit, Bench });
  }
}

// One unrecorded warm-up pass, as otrjs: the full size for the message scenarios, a quarter
// (and a tenth of the contacts) for the others, none for keygen and memory.
o.warmup = !o.quick && !['keygen', 'memory', 'latency_under_load', 'paced'].includes(o.scenario);
if (o.warmup) {
  const full = o.scenario.startsWith('msg_oneway_') || o.scenario === 'frag' || o.scenario.startsWith('fanin');
  await run({
    ...o,
    silent: true,
    repeats: 1,
    n: full ? o.n : Math.max(1, Math.floor(o.n / 4)),
    contacts: o.scenario.startsWith('fanin') ? o.contacts : Math.max(1, Math.floor(o.contacts / 10)),
  });
  blocking.max = 0;
  cpuMicros = 0;
  counted.switches = 0;
  counted.allocs = 0;
  for (const group of Object.keys(threadNs)) delete threadNs[group];
  loopDelay.reset();
  windows.length = 0;
}
await run(o);
