#!/usr/bin/env node
// JS-level fuzzer: mutated captured OTR messages (test/fuzz/corpus) fed to channel.read()
// of an established session through the public API. Not part of `npm test`.
//
//   node test/fuzz/js-fuzz.mjs [iterations=20000] [--seed=N] [--batch=32]
//
// Checks: no crash; every read() settles (resolves, or rejects with an OtrError) within
// a deadline; after every 1,000 inputs and at the end a fresh message each way still
// decrypts, and Bob's channel is still 'Unverified'/'Private'. Exit code 1 on any failure.
// Reads are issued in batches without awaiting (the queue path), then awaited together.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OtrError } from 'protocol-otr';
import { makePair } from './capture-corpus.mjs';

if (process.env.NODE_TEST_CONTEXT) process.exit(0); // not a test (node --test test/ runs every file)

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const found = args.find((a) => a.startsWith(`--${name}=`));
  return found ? Number(found.split('=')[1]) : fallback;
};
const ITERATIONS = Number(args.find((a) => /^\d+$/.test(a)) ?? 20000);
const BATCH = option('batch', 32);
let seed = option('seed', Date.now() % 2 ** 31) >>> 0;
const SEED = seed;
const SETTLE_MS = 30_000;

// xorshift32: reproducible with --seed.
function rand(n) {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed % n;
}
const pick = (list) => list[rand(list.length)];

const corpus = fs.readdirSync(path.join(HERE, 'corpus')).map((f) => fs.readFileSync(path.join(HERE, 'corpus', f), 'utf8'));
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const INTERESTING = [
  '?OTR',
  '?OTR:',
  '?OTR|',
  '?OTR,',
  '?OTRv3?',
  '?OTRv23?',
  '?OTR?',
  '?OTR Error:',
  '.',
  ',',
  '|',
  ' \t  \t\t\t\t \t \t \t  ',
  '  \t\t  \t\t',
  '  \t\t  \t ',
  'AAMD',
  'AAMC',
  'AAMK',
  'AAMR',
  'AAMS',
  'AAID',
  '\u0000',
  '\uffff',
  '\ud800',
  '😀',
  'é',
  '%',
  '\n',
  '\r\n',
  '0',
  '65535',
  '4294967295',
  '-1',
];

function mutateBase64(msg) {
  const m = /^\?OTR:([A-Za-z0-9+/=]+)\.$/.exec(msg);
  if (!m) return null;
  const bytes = Buffer.from(m[1], 'base64');
  const n = 1 + rand(4);
  for (let i = 0; i < n && bytes.length; i++) {
    const at = rand(bytes.length);
    switch (rand(4)) {
      case 0:
        bytes[at] ^= 1 << rand(8);
        break;
      case 1:
        bytes[at] = pick([0, 1, 0x7f, 0x80, 0xff]);
        break;
      case 2:
        if (bytes.length >= 4) bytes.writeUInt32BE(pick([0, 1, 0x7fffffff, 0xffffffff, 0x100]), Math.min(at, bytes.length - 4));
        break;
      default:
        bytes[at] = rand(256);
    }
  }
  const cut = rand(8) === 0 ? rand(bytes.length + 1) : bytes.length;
  return `?OTR:${bytes.subarray(0, cut).toString('base64')}.`;
}

function mutate(msg) {
  let s = msg;
  const rounds = 1 + rand(3);
  for (let r = 0; r < rounds; r++) {
    const at = rand(s.length + 1);
    switch (rand(10)) {
      case 0:
        s = mutateBase64(s) ?? s;
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + 1 + rand(8));
        break; // delete
      case 2:
        s = s.slice(0, at) + pick(INTERESTING) + s.slice(at);
        break; // insert token
      case 3:
        s = s.slice(0, at) + B64[rand(64)] + s.slice(at + 1);
        break; // replace char
      case 4:
        s = s.slice(0, at);
        break; // truncate
      case 5:
        s = s.slice(0, at) + pick(corpus).slice(rand(50));
        break; // splice
      case 6:
        s = s.replace(/\d+/, () => String(pick([0, 1, 2, 65535, 65536, 4294967295, 99999999999])));
        break; // fragment numbers
      case 7:
        s = s + s.slice(0, rand(s.length + 1));
        break; // duplicate
      case 8:
        s = s.slice(0, at) + String.fromCharCode(rand(0x10000)) + s.slice(at);
        break; // any UTF-16 unit
      default:
        s = mutateBase64(s) ?? s.split('').reverse().join('');
        break;
    }
  }
  return s;
}

function withDeadline(promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not settle within ${SETTLE_MS} ms: ${what}`)), SETTLE_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

// The key-work budget lifted: every mutated AKE message reaches libotr (the budget is tested by the suite).
const pair = await makePair({ otrOptions: { maxKeyWorkPerContact: 0xffffffff } });
const { channels, received, pump } = pair;
await channels.alice.init();
await pump();
if (channels.alice.status !== 'Unverified' || channels.bob.status !== 'Unverified') {
  throw new Error(`the AKE did not complete: ${channels.alice.status} / ${channels.bob.status}`);
}

let checks = 0;
async function check() {
  checks++;
  for (const [from, to] of [
    ['alice', 'bob'],
    ['bob', 'alice'],
  ]) {
    const text = `check ${checks} from ${from}`;
    pair.inbox[to].length = 0; // whatever the fuzz inputs made Bob send is dropped
    pair.inbox[from].length = 0;
    const before = received[to].length;
    await channels[from].write(text);
    const wire = pair.inbox[to].splice(0);
    if (!wire.length || !wire.every((m) => m.startsWith('?OTR:AAMD'))) throw new Error(`${from} no longer encrypts: ${wire[0]}`);
    for (const m of wire) await channels[to].read(m);
    if (!received[to].slice(before).includes(text)) throw new Error(`${to} did not decrypt "${text}" (status ${channels[to].status})`);
  }
}

const started = Date.now();
let resolved = 0;
let rejected = 0;
const rejectCodes = new Map();
try {
  for (let done = 0; done < ITERATIONS;) {
    const n = Math.min(BATCH, ITERATIONS - done);
    const inputs = Array.from({ length: n }, () => mutate(pick(corpus)));
    const outcomes = await Promise.allSettled(inputs.map((m) => withDeadline(channels.bob.read(m), JSON.stringify(m.slice(0, 80)))));
    for (const [i, o] of outcomes.entries()) {
      if (o.status === 'fulfilled') {
        resolved++;
      } else if (o.reason instanceof OtrError) {
        rejected++;
        rejectCodes.set(o.reason.code, (rejectCodes.get(o.reason.code) ?? 0) + 1);
      } else {
        throw new Error(`read() failed with a non-OtrError for ${JSON.stringify(inputs[i].slice(0, 200))}: ${o.reason?.stack ?? o.reason}`);
      }
    }
    pair.inbox.alice.length = 0; // Bob's replies to garbage (errors, DH-Commits) go nowhere
    const before = done;
    done += n;
    if (Math.floor(done / 1000) !== Math.floor(before / 1000) || done === ITERATIONS) await check();
  }
} catch (error) {
  console.error(`js-fuzz: FAILED (seed ${SEED}): ${error.stack ?? error}`);
  process.exitCode = 1;
}
const seconds = (Date.now() - started) / 1000;
console.log(
  `js-fuzz: ${resolved + rejected} inputs in ${seconds.toFixed(1)} s (${Math.round((resolved + rejected) / seconds)}/s), seed ${SEED}: ` +
    `${resolved} resolved, ${rejected} rejected with OtrError ${JSON.stringify(Object.fromEntries(rejectCodes))}, ${checks} session checks`,
);
await pair.close();
