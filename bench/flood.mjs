// The `flood` scenario of bench/protocol-otr.mjs (protocol-otr only): one hostile contact hands
// the bridge a burst of OTR queries while the bridge's other contacts run their AKEs. What the
// flood costs the others (their AKE times with and without it) and the bridge (bytes, wire
// messages, CPU). Definition: bench/README.md.
//
// Each phase runs on fresh OTR instances: the bridge (account alice) and one instance holding
// the legitimate remote parties (account bob; party i is the bridge's contact bob<i>, and bob's
// contact alice<i>). The flooder is no OTR instance: its queries are plain text handed to the
// bridge's read(), and what the bridge sends it is counted and delivered nowhere, so nothing in
// the process works on the flooder's behalf but the bridge.

import { performance } from 'node:perf_hooks';
import { MessageEvent } from 'protocol-otr';
import { median, r3 } from './common.mjs';

const FLOODER = 'mallory';
const QUERY = '?OTRv3?';
// A new contact's query every 10 ms: each AKE is timed on its own (started at once, 50 AKEs
// would all end together, and each would measure the batch), and the 50 of them fall within
// the time a bridge answering every query took for 2,000 of them (about 0.8 s on 2 cores).
const SPACING_MS = 10;
// Heartbeats (log only) are the only events a legitimate AKE may raise.
const HEARTBEAT_EVENTS = new Set([MessageEvent.LOG_HEARTBEAT_RCVD, MessageEvent.LOG_HEARTBEAT_SENT]);

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const poolBusyMs = (otr) => otr.stats().threads.reduce((sum, t) => sum + t.busyMs, 0);
const cpuMsSince = (start) => {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
};

// One phase: `legit` remote parties each send the bridge a query, one every SPACING_MS (each
// AKE is timed from that init() call until both sides' onGoneSecure), the first right after
// `queries` queries from the flooder were handed to the bridge in one burst (as one read of a
// socket would). Resolves when every call made during the phase has settled.
async function phase(bench, legit, queries) {
  const { party, keys, fail, timed, measuring } = bench;
  const bridge = await party('alice', keys.alice);
  const remote = await party('bob', keys.bob);
  const pending = []; // every call of the phase, to wait for
  const track = (promise, what) => pending.push(promise.catch((e) => fail(`${what}: ${e.code ?? ''} ${e.message}`)));
  const timings = Array.from({ length: legit }, () => ({ start: 0, end: 0, secure: [false, false] }));
  let secureLeft = legit;
  let allSecure;
  const secured = new Promise((resolve) => (allSecure = resolve));
  if (legit === 0) allSecure();
  const goneSecure = (i, side) => {
    const t = timings[i];
    if (t.secure[side]) return;
    t.secure[side] = true;
    if (t.secure[1 - side]) {
      t.end = performance.now();
      if (--secureLeft === 0) allSecure();
    }
  };
  const toFlooder = { messages: 0, bytes: 0, events: {} };
  const remoteChannels = [];
  const index = (name) => Number(name.slice(3)); // bob<i>
  const router = bridge.account.router({
    maxMessageSize: 0,
    onWrite: (c, message) => {
      if (c.contact.name === FLOODER) {
        toFlooder.messages++;
        toFlooder.bytes += Buffer.byteLength(message);
        return;
      }
      track(
        timed(() => remoteChannels[index(c.contact.name)].read(message)),
        'remote read',
      );
    },
    onRead: (c) => fail(`the bridge was shown a message from ${c.contact.name}`),
    onGoneSecure: (c) => (c.contact.name === FLOODER ? fail('the flooder went secure') : goneSecure(index(c.contact.name), 0)),
    onEvent: (c, code, message) => {
      if (c.contact.name === FLOODER) toFlooder.events[code] = (toFlooder.events[code] ?? 0) + 1;
      else if (!HEARTBEAT_EVENTS.has(code)) fail(`bridge, ${c.contact.name}: event ${code} ${message ?? ''}`);
    },
  });
  for (let i = 0; i < legit; i++) {
    const contact = await remote.account.contact(`alice${i}`);
    remoteChannels.push(
      contact.channel({
        maxMessageSize: 0,
        queryRetries: 0,
        onWrite: (c, message) =>
          track(
            timed(() => router.read(`bob${i}`, message)),
            'bridge read',
          ),
        onRead: () => fail(`remote party ${i} was shown a message`),
        onGoneSecure: () => goneSecure(i, 1),
        onEvent: (c, code, message) => HEARTBEAT_EVENTS.has(code) || fail(`remote party ${i}: event ${code} ${message ?? ''}`),
      }),
    );
    router.channel(`bob${i}`); // opened before the clock starts, as the flooder's below
  }
  if (queries > 0) router.channel(FLOODER);

  const busy0 = poolBusyMs(bridge.otr);
  const cpu0 = process.cpuUsage();
  measuring(true);
  const t0 = performance.now();
  let rejected = 0;
  const floodReads = [];
  for (let k = 0; k < queries; k++) floodReads.push(timed(() => router.read(FLOODER, QUERY)).catch(() => rejected++));
  const floodDone = Promise.all(floodReads).then(() => performance.now() - t0);
  for (let i = 0; i < legit; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, SPACING_MS));
    timings[i].start = performance.now();
    track(
      timed(() => remoteChannels[i].init()),
      'init',
    );
  }
  await secured;
  const floodMs = await floodDone;
  // Calls handed in while waiting are in `pending` too: wait until no new one appears.
  for (let settled = 0; settled < pending.length;) {
    const upTo = pending.length;
    await Promise.all(pending.slice(settled, upTo));
    settled = upTo;
  }
  const wallMs = performance.now() - t0;
  measuring(false);
  const cpuMs = cpuMsSince(cpu0);
  const busyMs = poolBusyMs(bridge.otr) - busy0;
  await Promise.all([bridge.otr.close(), remote.otr.close()]);
  return {
    akeMs: timings.map((t) => t.end - t.start),
    floodMs,
    wallMs,
    cpuMs,
    busyMs,
    rejected,
    toFlooder,
  };
}

// Per repeat: the AKEs alone, the flood alone (what it costs the bridge, with nothing else in
// the process), then both at once (what it costs the others). Percentiles are over the AKEs
// of every repeat together.
export async function flood(o, bench) {
  const legit = o.quick ? 10 : 50;
  const runs = [];
  for (let r = 0; r < o.repeats; r++) {
    const alone = await phase(bench, legit, 0);
    const floodOnly = await phase(bench, 0, o.n);
    const both = await phase(bench, legit, o.n);
    for (const p of [floodOnly, both]) if (p.rejected) bench.fail(`${p.rejected} of the flooder's reads rejected`);
    runs.push({ alone, floodOnly, both });
  }
  const sorted = (key) => runs.flatMap((run) => run[key].akeMs).sort((a, b) => a - b);
  const alone = sorted('alone');
  const flooded = sorted('both');
  const med = (f) => r3(median(runs.map(f)));
  const bytesIn = o.n * Buffer.byteLength(QUERY);
  const bytesOut = med((run) => run.floodOnly.toFlooder.bytes);
  const events = {};
  for (const run of runs) for (const [code, count] of Object.entries(run.floodOnly.toFlooder.events)) events[code] = (events[code] ?? 0) + count;
  const floodCpuMs = med((run) => run.floodOnly.cpuMs);
  bench.emit(
    o,
    'ms',
    legit,
    runs.map((run) =>
      pct(
        [...run.both.akeMs].sort((a, b) => a - b),
        99,
      ),
    ),
    {
      contacts: legit,
      flood_queries: o.n,
      alone_p50_ms: r3(pct(alone, 50)),
      alone_p99_ms: r3(pct(alone, 99)),
      alone_max_ms: r3(alone.at(-1)),
      flood_p50_ms: r3(pct(flooded, 50)),
      flood_p99_ms: r3(pct(flooded, 99)),
      flood_max_ms: r3(flooded.at(-1)),
      p99_ratio: r3(pct(flooded, 99) / pct(alone, 99)),
      // The flood alone: every figure the bridge's.
      flood_bytes_in: bytesIn,
      flood_bytes_out: bytesOut,
      flood_amplification: r3(bytesOut / bytesIn),
      flood_wire_messages: med((run) => run.floodOnly.toFlooder.messages),
      flood_events: events,
      flood_cpu_ms: floodCpuMs,
      flood_cpu_us_per_query: r3((floodCpuMs * 1000) / o.n),
      flood_pool_busy_ms: med((run) => run.floodOnly.busyMs),
      flood_wall_ms: med((run) => run.floodOnly.wallMs),
      // Alongside the AKEs: the phase's process CPU minus that of the AKEs alone.
      flood_cpu_ms_concurrent: med((run) => run.both.cpuMs - run.alone.cpuMs),
      flood_wall_ms_concurrent: med((run) => run.both.floodMs),
      // The AKEs alone, per AKE (both sides: the remote parties are in this process too).
      cpu_us_per_op: r3(median(runs.map((run) => (run.alone.cpuMs * 1000) / legit))),
    },
  );
}
