#!/usr/bin/env node
// `npm run bench [-- --quick] [-- --only a,b] [-- --skip-otrjs] [-- --store]`: builds the C baseline,
// runs every scenario for the three implementations one after the other on this machine,
// prints the table with the ratios protocol-otr / C and protocol-otr / npm otr, checks the
// targets of the performance issue, and writes bench/results.json.

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { r3 } from './common.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCENARIOS = [
  'msg_oneway_16',
  'msg_oneway_1024',
  'msg_oneway_16384',
  'conversation',
  'ake',
  'smp',
  'keygen',
  'frag',
  'memory',
  'fanin',
  'fanin_floor',
  'paced',
  'latency_under_load',
  'scaling',
  'flood',
];
// protocol-otr only; C's figure for latency_under_load is its longest single SMP call, and
// flood and paced have no C counterpart (flood's baseline is its own run without the flood).
const JS_ONLY = new Set(['latency_under_load', 'scaling', 'flood', 'paced']);
const C_REFERENCE = new Set(['latency_under_load']);
// C's counterpart of fanin is its one-core one-way rate, msg_oneway_1024; npm otr has none.
// fanin_floor (V8 alone in the API's shape, no OTR) is measured against that same C figure.
const NO_OTRJS = new Set(['fanin', 'fanin_floor']);
const C_FIGURE_OF = { fanin_floor: 'fanin' };
const SCALING_THREADS = [1, 2, 4, 8];
const IMPLS = ['c', 'protocol-otr', 'otrjs'];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
// `--store`: the file store against the PostgreSQL store instead (bench/store.mjs).
if (args.includes('--store')) {
  const run = spawnSync(process.execPath, [path.join(HERE, 'store.mjs'), ...(quick ? ['--quick'] : [])], { stdio: 'inherit' });
  process.exit(run.status ?? 1);
}
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : SCENARIOS;
const skipOtrjs = args.includes('--skip-otrjs');
const keysDir = path.join(HERE, 'c', 'build', 'keys');
// protocol-otr runs with the allocation counter preloaded (bench/c/alloc_count.c), counting
// into a file of this directory.
const countsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'protocol-otr-bench-counts-'));
process.on('exit', () => fs.rmSync(countsDir, { recursive: true, force: true }));

process.stderr.write('building the C baseline...\n');
execFileSync(path.join(HERE, 'c', 'build.sh'), { stdio: ['ignore', 'ignore', 'inherit'] });
const baseline = path.join(HERE, 'c', 'build', 'baseline');
if (!fs.existsSync(path.join(keysDir, 'alice.key'))) execFileSync(baseline, ['genkeys', keysDir], { stdio: 'inherit' });

function command(impl, scenario, extra = []) {
  const common = [scenario, '--keys', keysDir, ...(quick ? ['--quick'] : []), ...extra];
  // C's reference for latency_under_load: the longest single libotr call of an SMP.
  if (impl === 'c' && scenario === 'latency_under_load') return [baseline, ['smp', ...common.slice(1)]];
  if (impl === 'c' && scenario === 'fanin') return [baseline, ['msg_oneway_1024', ...common.slice(1)]];
  if (impl === 'c') return [baseline, common];
  const script = impl === 'otrjs' ? 'otrjs.mjs' : 'protocol-otr.mjs';
  return [process.execPath, ['--expose-gc', path.join(HERE, script), ...common]];
}

function runOne(impl, scenario, extra = [], label = scenario) {
  const [file, argv] = command(impl, scenario, extra);
  process.stderr.write(`${impl} ${label}... `);
  const t0 = Date.now();
  // C and protocol-otr run with the allocation counter preloaded; protocol-otr reads it around
  // its timed repeats, C's whole run (setup included) is read here after it ended.
  const counts = path.join(countsDir, `${impl}-${label}.counts`);
  const env = impl === 'otrjs' ? process.env : { ...process.env, LD_PRELOAD: path.join(HERE, 'c', 'build', 'alloc_count.so'), BENCH_ALLOC_COUNT_FILE: counts };
  const run = spawnSync(file, argv, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'], timeout: 30 * 60 * 1000 });
  const line = run.stdout.trim().split('\n').filter(Boolean).at(-1);
  if (run.status !== 0 || !line) {
    process.stderr.write(`failed (${run.status ?? run.signal})\n`);
    return { impl, scenario: label, failed: true };
  }
  const result = { ...JSON.parse(line), scenario: label };
  if (impl === 'c' && fs.existsSync(counts)) result.allocs_per_op = r3(allocations(counts) / (result.n * result.repeats.length));
  process.stderr.write(`${fmt(result.median)} ${result.unit} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  return result;
}

const results = [];
for (const scenario of only) {
  if (scenario === 'scaling') {
    // Conversation throughput of one OTR pair with 1, 2, 4 and 8 threads, against C's.
    if (!only.includes('conversation')) results.push(runOne('c', 'conversation'));
    for (const threads of SCALING_THREADS) {
      results.push(runOne('protocol-otr', 'conversation', ['--threads', String(threads)], `scaling_${threads}`));
    }
    continue;
  }
  for (const impl of IMPLS) {
    if (impl === 'otrjs' && (skipOtrjs || JS_ONLY.has(scenario) || NO_OTRJS.has(scenario))) continue;
    if (impl === 'c' && JS_ONLY.has(scenario) && !C_REFERENCE.has(scenario)) continue;
    if (impl === 'c' && C_FIGURE_OF[scenario]) continue;
    results.push(runOne(impl, scenario));
  }
}

// The allocation counter's file: one 64-byte slot per thread, its count in the first 8 bytes.
function allocations(file) {
  const slots = fs.readFileSync(file);
  let sum = 0;
  for (let at = 0; at + 8 <= slots.length; at += 64) sum += Number(slots.readBigUInt64LE(at));
  return sum;
}
function fmt(x) {
  if (x === undefined) return '—';
  if (x >= 100) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(x >= 10 ? 1 : 2);
}

// The library's own runs (fanin_floor runs no library code).
const libraryRuns = () => results.filter((r) => r.impl === 'protocol-otr' && !C_FIGURE_OF[r.scenario]);
const get = (impl, scenario) =>
  results.find((r) => r.impl === impl && r.scenario === (impl === 'c' ? (C_FIGURE_OF[scenario] ?? scenario) : scenario) && !r.failed);
const higherIsBetter = (unit) => unit === 'msg/s' || unit === 'AKE/s';

// protocol-otr / other, as a "times as good" factor (>1 = protocol-otr is better) and the
// raw quotient of the two medians.
function ratio(scenario, other) {
  const p = get('protocol-otr', scenario);
  const o = get(other, scenario);
  if (!p || !o) return undefined;
  return { raw: p.median / o.median, better: higherIsBetter(p.unit) ? p.median / o.median : o.median / p.median };
}

const rows = [
  ['scenario', 'unit', 'C', 'protocol-otr', 'npm otr', 'p-otr / C', 'p-otr / otr', 'loop p50/p99/max ms', 'switches / allocs per op', 'C allocs per op'],
];
for (const scenario of only.filter((s) => !JS_ONLY.has(s))) {
  const cell = (impl) => {
    const r = get(impl, scenario);
    if (!r && impl === 'otrjs' && NO_OTRJS.has(scenario)) return '—';
    if (!r) return impl === 'otrjs' && skipOtrjs ? 'skipped' : 'failed';
    return r.repeats.length > 1 ? `${fmt(r.median)} (${fmt(r.min)}–${fmt(r.max)})` : fmt(r.median);
  };
  const p = get('protocol-otr', scenario);
  const rc = ratio(scenario, 'c');
  const ro = ratio(scenario, 'otrjs');
  rows.push([
    scenario,
    (get('c', scenario) ?? p)?.unit ?? '',
    cell('c'),
    cell('protocol-otr'),
    cell('otrjs'),
    rc ? `${rc.raw.toFixed(2)}×` : '—',
    ro ? `${ro.raw.toFixed(ro.raw >= 10 ? 0 : 2)}×` : '—',
    p ? `${p.eld_p50_ms} / ${p.eld_p99_ms} / ${p.eld_max_ms}` : '—',
    p ? `${p.switches_per_op} / ${p.allocs_per_op ?? '—'}` : '—',
    get('c', scenario)?.allocs_per_op ?? '—',
  ]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
const printRow = (r) => console.log(`| ${r.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`);
printRow(rows[0]);
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
rows.slice(1).forEach(printRow);
console.log('\nRatios are of the medians: for msg/s and AKE/s higher is better, for ms and bytes lower is better.');
console.log(
  "fanin's C figure is C's one-core one-way rate (msg_oneway_1024) of this run. Switches and allocations: the whole process's, per message (AKE, SMP, key),\n" +
    "protocol-otr's in its timed repeats, C's over its whole run (setup included) divided by the messages of its repeats.",
);

// fanin_floor: what V8 alone costs per message in the API's shape, next to fanin and C.
const floorRun = get('protocol-otr', 'fanin_floor');
if (only.includes('fanin_floor') && floorRun) {
  const faninRun = get('protocol-otr', 'fanin');
  const cRun = get('c', 'fanin_floor');
  const perMessage = (r) => (r ? `${r.cpu_us_per_op} µs (JS thread ${r.cpu_us_per_op_by_thread?.js ?? '?'} µs)` : 'failed');
  console.log("\nfanin_floor (V8 alone, no OTR: fanin's messages in the API's shape; a lower bound on the JS thread's work):");
  console.log(
    `  CPU per message: floor ${perMessage(floorRun)}, fanin ${perMessage(faninRun)}, C ${cRun ? r3(1e6 / cRun.median) : '?'} µs (one core, at its rate)`,
  );
  if (cRun)
    console.log(
      `  the floor's rate is ${(floorRun.median / cRun.median).toFixed(2)}× C's; fanin's is ${faninRun ? (faninRun.median / floorRun.median).toFixed(2) : '?'}× the floor's`,
    );
}

// paced: 1 KB messages offered at fixed rates over the contacts.
const pacedRun = get('protocol-otr', 'paced');
if (only.includes('paced')) {
  console.log(`\npaced (contacts → bridge, 1 KB, offered rates over ${pacedRun?.contacts ?? '?'} contacts, ${pacedRun?.seconds_per_rate ?? '?'} s each):`);
  if (pacedRun) {
    console.log('| offered msg/s | achieved msg/s | loop p99 / max ms | latency p50 / p99 / max ms | switches / allocs per msg |');
    console.log('|---|---|---|---|---|');
    for (const r of pacedRun.rates) {
      console.log(
        `| ${fmt(r.offered)} | ${fmt(r.achieved)} | ${r.eld_p99_ms} / ${r.eld_max_ms} | ${r.latency_p50_ms} / ${r.latency_p99_ms} / ${r.latency_max_ms} | ${r.switches_per_msg} / ${r.allocs_per_msg ?? '—'} |`,
      );
    }
  } else {
    console.log('  protocol-otr: failed');
  }
}

// latency_under_load: the probe's write() → bridge onRead, alone and under load, against the
// longest single libotr call C made during an SMP in the same run.
const latency = get('protocol-otr', 'latency_under_load');
const longestSmpCall = get('c', 'latency_under_load')?.longest_call_ms;
if (only.includes('latency_under_load')) {
  console.log('\nlatency_under_load (1 KB probe every 20 ms, write() → bridge onRead):');
  if (latency) {
    console.log(`  alone:      p50 ${latency.alone_p50_ms} ms, p99 ${latency.alone_p99_ms} ms`);
    console.log(
      `  under load: p50 ${latency.load_p50_ms} ms, p99 ${latency.load_p99_ms} ms, max ${latency.load_max_ms} ms ` +
        `(${latency.background} contacts: ${latency.turns_per_s} turns/s, ${latency.refreshes_per_s} refresh/s, ${latency.smps_per_s} SMP/s; loop p99 ${latency.eld_p99_ms} ms)`,
    );
  } else {
    console.log('  protocol-otr: failed');
  }
  console.log(
    `  C's longest single SMP call: ${longestSmpCall ?? 'failed'} ms` +
      (latency && longestSmpCall ? `; p99 under load / that call = ${(latency.load_p99_ms / longestSmpCall).toFixed(2)}` : ''),
  );
}

// scaling: one OTR pair's conversation throughput by thread count.
const scale = (t) => get('protocol-otr', `scaling_${t}`);
if (only.includes('scaling')) {
  const cConv = get('c', 'conversation')?.median;
  const one = scale(1)?.median;
  console.log('\nscaling (conversation, one OTR pair, 100 conversations):');
  console.log('| threads | msg/s | × 1 thread | × C | loop p99 ms |');
  console.log('|---------|-------|------------|-----|-------------|');
  for (const t of SCALING_THREADS) {
    const r = scale(t);
    console.log(
      `| ${t} | ${r ? fmt(r.median) : 'failed'} | ${r && one ? (r.median / one).toFixed(2) : '—'} | ${r && cConv ? (r.median / cConv).toFixed(2) : '—'} | ${r?.eld_p99_ms ?? '—'} |`,
    );
  }
}

// flood: one contact's burst of queries while the others run their AKEs.
const flood = get('protocol-otr', 'flood');
if (only.includes('flood')) {
  console.log('\nflood (one contact hands the bridge a burst of OTR queries while the others run their AKEs):');
  if (flood) {
    const kb = (b) => `${(b / 1024).toFixed(1)} KB`;
    console.log(
      `  the others' AKEs (${flood.contacts}, a query every 10 ms; query → both sides secure): without the flood p50 ${flood.alone_p50_ms} ms, p99 ${flood.alone_p99_ms} ms; ` +
        `with ${flood.flood_queries} queries p50 ${flood.flood_p50_ms} ms, p99 ${flood.flood_p99_ms} ms; p99 ratio ${flood.p99_ratio}`,
    );
    console.log(
      `  to the flooder: ${flood.flood_wire_messages} wire messages, ${kb(flood.flood_bytes_out)} sent for ${kb(flood.flood_bytes_in)} received ` +
        `(${flood.flood_amplification}×); events ${JSON.stringify(flood.flood_events)}`,
    );
    console.log(
      `  the bridge's CPU for the flood: ${flood.flood_cpu_ms} ms of process CPU (${flood.flood_cpu_us_per_query} µs a query), ` +
        `pool threads busy ${flood.flood_pool_busy_ms} ms, over ${flood.flood_wall_ms} ms; alongside the AKEs +${flood.flood_cpu_ms_concurrent} ms`,
    );
  } else {
    console.log('  protocol-otr: failed');
  }
}

// The targets of the bulk-path issue (2-core machine), and the earlier ones it did not change.
// [name, check, scenarios it needs]: a target whose scenarios were not run says so.
const targets = [
  ['msg_oneway_1024 ≥ 0.8× C', () => ratio('msg_oneway_1024', 'c')?.raw >= 0.8],
  ["fanin ≥ 1.0× C's one-core one-way rate", () => ratio('fanin', 'c')?.raw >= 1.0],
  [
    'paced: at 100,000 msg/s loop p99 ≤ 2 ms and latency p99 ≤ 5 ms',
    () => {
      const top = pacedRun?.rates.find((r) => r.offered === 100000);
      return top && top.achieved >= 0.95 * top.offered && top.eld_p99_ms <= 2 && top.latency_p99_ms <= 5;
    },
  ],
  ['conversation ≥ 1.8× C', () => ratio('conversation', 'c')?.raw >= 1.8],
  ['ake ≥ 1.8× C', () => ratio('ake', 'c')?.raw >= 1.8],
  ['smp ≤ 1.05× C', () => ratio('smp', 'c')?.raw <= 1.05],
  ['memory ≤ 0.65× C per secure context', () => ratio('memory', 'c')?.raw <= 0.65],
  ['event-loop delay p99 ≤ 2 ms in every scenario', () => libraryRuns().every((r) => (r.eld_p99_ms ?? Infinity) <= 2)],
  ["latency_under_load p99 < ½ C's longest SMP call", () => latency && longestSmpCall && latency.load_p99_ms < longestSmpCall / 2],
  ['scaling: 2 threads ≥ 1.6× 1 thread', () => scale(2) && scale(1) && scale(2).median / scale(1).median >= 1.6],
  ["flood: the others' AKE p99 ≤ 1.5× without it", () => flood && flood.p99_ratio <= 1.5],
  ['msg_oneway_1024 ≥ 100× npm otr', () => ratio('msg_oneway_1024', 'otrjs')?.raw >= 100],
  ['ake ≥ 20× npm otr', () => ratio('ake', 'otrjs')?.raw >= 20],
  ['conversation ≥ 20× npm otr', () => ratio('conversation', 'otrjs')?.raw >= 20],
  ['smp ≥ 20× npm otr', () => ratio('smp', 'otrjs')?.better >= 20],
];
console.log('\nTargets:');
const needs = (name) =>
  SCENARIOS.filter((s) => name.startsWith(`${s} `) || name.startsWith(`${s}:`) || (s === 'conversation' && name.startsWith('conversation ')));
const checked = targets.map(([name, check]) => {
  const scenarios = name.startsWith('event-loop') ? only : needs(name);
  if (!scenarios.every((s) => only.includes(s))) {
    console.log(`  not run ${name}`);
    return { target: name, met: null };
  }
  const met = Boolean(check());
  console.log(`  ${met ? 'met    ' : 'MISSED '} ${name}`);
  if (!met && name.startsWith('event-loop')) {
    // What stopped the loop: V8's garbage collection (pauses inside the measured time) or not.
    for (const r of libraryRuns().filter((x) => !((x.eld_p99_ms ?? Infinity) <= 2))) {
      const gc = r.gc_pauses === undefined ? '' : `; V8 GC ${r.gc_pauses} pauses, longest ${r.gc_max_ms} ms, ${(r.gc_share * 100).toFixed(1)} % of the time`;
      console.log(`          ${r.scenario}: loop p99 ${r.eld_p99_ms} ms, longest library call ${r.max_block_ms} ms${gc}`);
    }
  }
  return { target: name, met };
});
if (quick) console.log('  (--quick: a liveness check, not a measurement)');

const out = {
  date: new Date().toISOString(),
  quick,
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, load1: os.loadavg()[0], node: process.version },
  results,
  targets: checked,
};
fs.writeFileSync(path.join(HERE, 'results.json'), JSON.stringify(out, null, 2) + '\n');
console.log(`\nwrote ${path.relative(process.cwd(), path.join(HERE, 'results.json'))}`);
if (results.some((r) => r.failed)) process.exitCode = 1;
