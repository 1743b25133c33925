// The bulk message scenarios of bench/protocol-otr.mjs: `fanin` (many contacts' one-way
// messages all in flight at once: the rate at saturation) and `paced` (messages offered at a
// steady rate over many contacts: what the event loop and each message's latency look like
// below saturation). Definitions: bench/README.md.
//
// In both, the contacts (bob's side) write 1 KB messages to the bridge (alice's side, one
// account), the way a bridge's traffic mostly arrives.

import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { payload, perMessage, processCounters, r3 } from './common.mjs';

const LEN = 1024;
const TEXTS = 1000; // distinct payloads, reused in turn
const WIRE_LEN = 1420; // about the length of one LEN-byte message as OTR wire text
export const PACED_RATES = [20000, 50000, 100000];
// Paced: at most this many messages outstanding (written, not yet read); past it the sender
// waits, and the achieved rate says the offered one was not kept.
const PACED_OUTSTANDING = 20000;

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function bridgeAndContacts(o, { party, keys, Bench }) {
  const alice = await party('alice', keys.alice);
  const bob = await party('bob', keys.bob);
  const b = new Bench(alice, bob);
  for (let i = 0; i < o.contacts; i++) await b.add(i);
  await b.ake();
  const close = () => Promise.all([alice.otr.close(), bob.otr.close()]);
  return { b, close };
}

// `contacts` conversations; each repeat, every contact writes `n` messages to the bridge, all
// at once (round robin over the contacts), and the rate is all messages / the time until the
// bridge has read the last. Sessions are kept across repeats.
export async function fanin(o, bench) {
  const { fail, timed, measuring, emit } = bench;
  const { b, close } = await bridgeAndContacts(o, bench);
  const texts = Array.from({ length: Math.min(o.n, TEXTS) }, (_, k) => payload(LEN, k));
  const total = b.pairs.length * o.n;
  const values = [];
  for (let r = 0; r < o.repeats; r++) {
    const seen = new Map(b.pairs.map((p) => [p, 0]));
    let read = 0;
    let done;
    const all = new Promise((resolve) => (done = resolve));
    b.onRead = (pair, side, text) => {
      const k = seen.get(pair);
      if (side !== 0 || text !== texts[k % texts.length]) fail(`fanin: contact ${pair.i}: message ${k} differs or out of order`);
      seen.set(pair, k + 1);
      if (++read === total) done();
    };
    measuring(true);
    const t0 = performance.now();
    for (let k = 0; k < o.n; k++) {
      for (const pair of b.pairs) {
        timed(() => pair.channels[1].write(texts[k % texts.length])).catch((e) => fail(`write: ${e.message}`));
      }
    }
    await all;
    const t1 = performance.now();
    measuring(false);
    values.push(total / ((t1 - t0) / 1000));
  }
  emit(o, 'msg/s', total, values, { payload_bytes: LEN, contacts: b.pairs.length, messages_per_contact: o.n });
  await close();
}

// For each offered rate: for `n` ms, messages are written at that rate (a 1 ms timer writes
// what is due, round robin over the contacts), then the last is awaited. Per rate: achieved
// rate, event-loop delay, write → bridge onRead latency, switches and allocations per message.
export async function paced(o, bench) {
  const { fail, timed, measuring, emit } = bench;
  const { b, close } = await bridgeAndContacts(o, bench);
  const texts = Array.from({ length: TEXTS }, (_, k) => payload(LEN, k));
  const rates = [];
  let messagesTotal = 0;
  measuring(true);
  for (const offered of PACED_RATES) {
    const queues = new Map(b.pairs.map((p) => [p, { sentAt: [], head: 0, next: 0 }]));
    const latencies = [];
    let sent = 0;
    let read = 0;
    let lastRead = 0;
    let sending = true;
    let drained;
    const allRead = new Promise((resolve) => (drained = resolve));
    b.onRead = (pair, side, text) => {
      const now = performance.now();
      const q = queues.get(pair);
      if (side !== 0 || text !== texts[q.head % TEXTS]) fail(`paced: contact ${pair.i}: message ${q.head} differs or out of order`);
      latencies.push(now - q.sentAt[q.head++]);
      read++;
      lastRead = now;
      if (!sending && read === sent) drained();
    };
    const loop = monitorEventLoopDelay({ resolution: 1 });
    const counters = processCounters();
    let heldBack = 0; // ticks at which the outstanding limit stopped the sender
    loop.enable();
    const t0 = performance.now();
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        const now = performance.now();
        const elapsed = Math.min(now - t0, o.n);
        const due = Math.floor((offered * elapsed) / 1000);
        if (due - sent > 0 && sent - read >= PACED_OUTSTANDING) heldBack++;
        while (sent < due && sent - read < PACED_OUTSTANDING) {
          const pair = b.pairs[sent % b.pairs.length];
          const q = queues.get(pair);
          q.sentAt.push(performance.now());
          const text = texts[q.next++ % TEXTS];
          sent++;
          timed(() => pair.channels[1].write(text)).catch((e) => fail(`write: ${e.message}`));
        }
        if (elapsed >= o.n && sent >= due) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    sending = false;
    if (read === sent) drained();
    await allRead;
    loop.disable();
    latencies.sort((x, y) => x - y);
    const seconds = (lastRead - t0) / 1000;
    messagesTotal += sent;
    rates.push({
      offered,
      achieved: Math.round(sent / seconds),
      messages: sent,
      held_back_ticks: heldBack,
      eld_p99_ms: r3(loop.percentile(99) / 1e6),
      eld_max_ms: r3(loop.max / 1e6),
      latency_p50_ms: r3(pct(latencies, 50)),
      latency_p99_ms: r3(pct(latencies, 99)),
      latency_max_ms: r3(latencies.at(-1)),
      ...perMessage(counters, sent),
    });
  }
  measuring(false);
  emit(o, 'ms', messagesTotal, [rates.at(-1).latency_p99_ms], { payload_bytes: LEN, contacts: b.pairs.length, seconds_per_rate: o.n / 1000, rates });
  await close();
}

// What V8 alone costs for fanin's messages in the shape the API gives them, without OTR or
// the addon: per message a write() promise, a wire text of OTR's size made as a string (as
// onWrite gets it), a read() promise whose input is copied out of the heap (as the addon
// copies it), a plaintext string compared with what was sent (as onRead gets it), all of them
// in flight at once and settled in chunks a turn of the event loop at a time. A lower bound on
// the JS thread's work per message: no N-API call, no hand-off between threads.
export async function faninFloor(o, bench) {
  const { fail, measuring, emit } = bench;
  const contacts = o.contacts;
  const texts = Array.from({ length: Math.min(o.n, TEXTS) }, (_, k) => payload(LEN, k));
  const plain = texts.map((text) => Buffer.from(text, 'latin1'));
  // A 1 KB message's wire text: '?OTR:' + base64 of the data message + '.', about 1.4 KB.
  const wire = Buffer.alloc(WIRE_LEN, 'QUFB');
  const copiedOut = Buffer.alloc(2 * WIRE_LEN);
  const total = contacts * o.n;
  const CHUNK = 64;
  const values = [];
  for (let r = 0; r < o.repeats; r++) {
    const calls = new Map();
    let nextJob = 1;
    const ready = []; // [job, contact, message index, is a read]
    let head = 0;
    const start = (contact, k, isRead) => {
      const job = nextJob++;
      const promise = new Promise((resolve, reject) => calls.set(job, { resolve, reject }));
      ready.push(job, contact, k, isRead);
      return promise;
    };
    const settle = (job) => {
      const call = calls.get(job);
      calls.delete(job);
      call.resolve();
    };
    const seen = new Array(contacts).fill(0);
    let read = 0;
    let done;
    const all = new Promise((resolve) => (done = resolve));
    const deliver = () => {
      for (let c = 0; c < CHUNK && head < ready.length; c++, head += 4) {
        const [job, contact, k, isRead] = [ready[head], ready[head + 1], ready[head + 2], ready[head + 3]];
        if (!isRead) {
          const text = wire.toString('latin1'); // onWrite's wire text
          copiedOut.write(text, 'latin1'); // read(text): the addon copies it out
          start(contact, k, 1).catch((e) => fail(`read: ${e.message}`));
        } else {
          const text = plain[k % plain.length].toString('latin1'); // onRead's plaintext
          if (text !== texts[seen[contact] % texts.length]) fail(`fanin_floor: contact ${contact}: message ${k} differs`);
          seen[contact]++;
          if (++read === total) done();
        }
        settle(job);
      }
      if (head < ready.length) setImmediate(deliver);
    };
    measuring(true);
    const t0 = performance.now();
    for (let k = 0; k < o.n; k++) {
      for (let contact = 0; contact < contacts; contact++) {
        copiedOut.write(texts[k % texts.length], 'latin1'); // write(text): the addon copies it out
        start(contact, k, 0).catch((e) => fail(`write: ${e.message}`));
      }
    }
    setImmediate(deliver);
    await all;
    const t1 = performance.now();
    measuring(false);
    values.push(total / ((t1 - t0) / 1000));
  }
  emit(o, 'msg/s', total, values, { payload_bytes: LEN, contacts, messages_per_contact: o.n });
}
