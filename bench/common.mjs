// What the JavaScript benchmark scripts share (bench/otrjs.mjs, bench/protocol-otr.mjs):
// arguments, the bench key files, timing of synchronous calls, the JSON result line, and
// the payloads. Scenario definitions: bench/README.md.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SMP_QUESTION = 'What is the name of the benchmark?';
export const SMP_SECRET = 'protocol-otr bench été';
export const FRAG_MMS = 1400;
export const BURST = 100; // at most this many one-way messages outstanding

// `node bench/<script> <scenario> [--n N] [--repeats R] [--contacts C] [--keys DIR] [--quick]`
// with the script's own defaults per scenario ({ n, repeats }).
export function parseArgs(argv, script, defaults) {
  const usage = () => {
    process.stderr.write(
      `usage: node bench/${script} <scenario> [--n N] [--repeats R] [--contacts C] [--keys DIR] [--threads T] [--quick]\n` +
        `scenarios: ${Object.keys(defaults).join(' ')}\n`,
    );
    process.exit(2);
  };
  const o = { scenario: argv[0], quick: false };
  if (!o.scenario || !defaults[o.scenario]) usage();
  const num = (s) => {
    const v = Number(s);
    if (!Number.isInteger(v) || v < 1) usage();
    return v;
  };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--n' && i + 1 < argv.length) o.n = num(argv[++i]);
    else if (a === '--repeats' && i + 1 < argv.length) o.repeats = num(argv[++i]);
    else if (a === '--contacts' && i + 1 < argv.length) o.contacts = num(argv[++i]);
    else if (a === '--keys' && i + 1 < argv.length) o.keys = argv[++i];
    else if (a === '--threads' && i + 1 < argv.length) o.threads = num(argv[++i]);
    else usage();
  }
  let { n, repeats } = defaults[o.scenario];
  let contacts = o.contacts ?? 100;
  if (o.quick) {
    n = Math.max(1, Math.floor(n / 20));
    repeats = 1;
    contacts = Math.max(1, Math.floor(contacts / 20));
  }
  o.n ??= n;
  o.repeats ??= repeats;
  o.contacts = contacts;
  o.keys ??= path.join(HERE, 'c', 'build', 'keys');
  return o;
}

// DIR/alice.key and DIR/bob.key (libotr's format), written by the C baseline when missing.
export function benchKeyFiles(dir) {
  const files = { alice: path.join(dir, 'alice.key'), bob: path.join(dir, 'bob.key') };
  if (!fs.existsSync(files.alice) || !fs.existsSync(files.bob)) {
    const bin = path.join(HERE, 'c', 'build', 'baseline');
    if (!fs.existsSync(bin)) execFileSync(path.join(HERE, 'c', 'build.sh'), { stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync(bin, ['genkeys', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return files;
}

// The longest single synchronous call into the library under test (max_block_ms).
export const blocking = {
  max: 0,
  timed(fn) {
    const t = performance.now();
    try {
      return fn();
    } finally {
      const d = performance.now() - t;
      if (d > blocking.max) blocking.max = d;
    }
  },
};

export function median(v) {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const r3 = (x) => Math.round(x * 1000) / 1000;

// Writes the scenario's one JSON line (nothing during a warm-up pass).
export function emitLine(impl, o, unit, n, values, extra = {}) {
  if (o.silent) return;
  const line = {
    impl,
    scenario: o.scenario,
    unit,
    n,
    repeats: values.map(r3),
    median: r3(median(values)),
    min: r3(Math.min(...values)),
    max: r3(Math.max(...values)),
    quick: o.quick,
    warmup: o.warmup,
    node: process.version,
    load1: r3(os.loadavg()[0]),
    ...extra,
  };
  process.stdout.write(JSON.stringify(line) + '\n');
}

export function failer(prefix) {
  return (msg) => {
    process.stderr.write(`${prefix}: ${msg}\n`);
    process.exit(1);
  };
}

// A promise that resolves after `target` calls of hit(); more calls are a failure.
export function counter(target, fail) {
  let count = 0;
  let resolve;
  const done = new Promise((r) => (resolve = r));
  if (target === 0) resolve();
  return {
    done,
    hit() {
      if (++count === target) resolve();
      if (count > target) fail('counter overrun');
    },
    get count() {
      return count;
    },
  };
}

// Payload i: "%08d" then a fixed ASCII pattern, exactly len bytes (same as the C baseline).
const PATTERN = Array.from({ length: 26 * 4 }, (_, k) => String.fromCharCode(97 + ((k * 7 + 3) % 26))).join('');
export function payload(len, i) {
  let s = '';
  while (s.length < len) s += PATTERN;
  const num = String(i).padStart(8, '0');
  return (num + s.slice(num.length)).slice(0, len);
}

// The CPU time of each of the process's threads, grouped by what they do: the JS thread,
// protocol-otr's pool threads (public-key and other work), its express thread (cheap work
// only), its courier (timed hand-overs to JS), and Node's others (V8's collector and
// compiler, libuv). From /proc/self/task/*/schedstat (nanoseconds on a CPU).
const THREAD_GROUPS = { 'protocol-otr': 'pool', 'protocol-otr-ex': 'express', 'protocol-otr-dl': 'courier' };
export function threadCpu() {
  const ns = {};
  for (const tid of fs.readdirSync('/proc/self/task')) {
    let comm, onCpu;
    try {
      comm = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'latin1').trim();
      onCpu = Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
    } catch {
      continue; // the thread ended meanwhile
    }
    const group = Number(tid) === process.pid ? 'js' : (THREAD_GROUPS[comm] ?? 'node_other');
    ns[group] = (ns[group] ?? 0) + onCpu;
  }
  return ns;
}

// Adds to `into` what each group of threads spent (ns) between two threadCpu() readings.
export function addThreadCpu(into, start, end) {
  for (const [group, ns] of Object.entries(end)) into[group] = (into[group] ?? 0) + ns - (start[group] ?? 0);
}

// Where a message's cost goes besides CPU: the process's context switches (voluntary and
// involuntary, all threads, from /proc/self/status) and its heap allocations — counted by
// bench/c/build/alloc_count.so when `npm run bench` preloads it (LD_PRELOAD) with
// BENCH_ALLOC_COUNT_FILE naming the file it counts into; `allocs` is null without it.
export function processCounters() {
  const status = fs.readFileSync('/proc/self/status', 'latin1');
  const field = (name) => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  const switches = field('voluntary_ctxt_switches') + field('nonvoluntary_ctxt_switches');
  const file = process.env.BENCH_ALLOC_COUNT_FILE;
  let allocs = null;
  if (file && process.env.LD_PRELOAD?.includes('alloc_count')) {
    const slots = fs.readFileSync(file);
    allocs = 0;
    // one 64-byte slot per thread, its count in the first 8 bytes
    for (let at = 0; at + 8 <= slots.length; at += 64) allocs += Number(slots.readBigUInt64LE(at));
  }
  return { switches, allocs };
}

// The growth of processCounters() since `start`, per message.
export function perMessage(start, messages) {
  const now = processCounters();
  const per = (a, b) => (a === null || b === null || messages === 0 ? null : r3((a - b) / messages));
  return { switches_per_msg: per(now.switches, start.switches), allocs_per_msg: per(now.allocs, start.allocs) };
}
