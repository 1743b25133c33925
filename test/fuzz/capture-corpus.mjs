#!/usr/bin/env node
// Captures real OTR wire messages of every type by running two parties through the public
// API, and writes them to test/fuzz/corpus/ (the seed corpus of both fuzzers).
//
//   node test/fuzz/capture-corpus.mjs            # uses the committed keys in test/fuzz/keys/
//   node test/fuzz/capture-corpus.mjs --new-keys # generates test/fuzz/keys/ first
//
// The parties use the committed throwaway keys and instance tags in test/fuzz/keys/, the
// same ones the fuzz harnesses load, so captured v3 messages carry the instance tags the
// harness's parties really have and get past the instance-tag check into the parsers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OTR, Policy } from 'protocol-otr';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const KEYS = path.join(HERE, 'keys');
const CORPUS = path.join(HERE, 'corpus');
export const ALICE = 'alice@example.org';
export const BOB = 'bob@example.org';
export const PROTO = 'prpl-jabber';

export function filesIn(dir) {
  return {
    privkeysFile: path.join(dir, 'otr.private_key'),
    contactsFile: path.join(dir, 'otr.fingerprints'),
    instanceTagsFile: path.join(dir, 'otr.instance_tags'),
  };
}

// A fresh temp copy of one party's committed keys (the fingerprints file is never shared).
export function partyDir(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `otr-fuzz-${name}-`));
  for (const f of ['otr.private_key', 'otr.instance_tags']) {
    fs.copyFileSync(path.join(KEYS, name, f), path.join(dir, f));
    fs.chmodSync(path.join(dir, f), 0o600); // a key others can read is refused
  }
  return dir;
}

async function newKeys() {
  for (const [name, account] of [
    ['alice', ALICE],
    ['bob', BOB],
  ]) {
    const dir = path.join(KEYS, name);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const otr = new OTR(filesIn(dir));
    await otr.account(account, PROTO);
    await otr.close();
    fs.rmSync(path.join(dir, 'otr.fingerprints'), { force: true });
  }
}

const tick = () => new Promise((r) => setImmediate(r));

// Two parties wired together; every wire message is recorded with who sent it.
// `otrOptions`: options of both OTR instances (the fuzzer lifts the key-work budget so every
// mutated AKE message reaches libotr).
export async function makePair({ policy = Policy.OPPORTUNISTIC, maxMessageSize = 0, onSmp, record, events, otrOptions = {} } = {}) {
  const dirs = { alice: partyDir('alice'), bob: partyDir('bob') };
  const otrs = { alice: new OTR({ ...filesIn(dirs.alice), ...otrOptions }), bob: new OTR({ ...filesIn(dirs.bob), ...otrOptions }) };
  const accounts = { alice: await otrs.alice.account(ALICE, PROTO), bob: await otrs.bob.account(BOB, PROTO) };
  const inbox = { alice: [], bob: [] };
  const received = { alice: [], bob: [] };
  const secure = { alice: 0, bob: 0 };
  const channels = {};
  for (const [me, peer, peerName] of [
    ['alice', 'bob', BOB],
    ['bob', 'alice', ALICE],
  ]) {
    const contact = await accounts[me].contact(peerName);
    channels[me] = contact.channel({
      policy,
      maxMessageSize,
      onWrite: (_c, msg) => {
        record?.(me, msg);
        inbox[peer].push(msg);
      },
      onRead: (_c, msg) => received[me].push(msg),
      onEvent: (_c, code, msg) => events?.(me, code, msg),
      onGoneSecure: () => secure[me]++,
      onSmp: onSmp ? () => onSmp(me) : undefined,
    });
  }
  const pump = async () => {
    for (let rounds = 0; rounds < 1000; rounds++) {
      let moved = false;
      for (const me of ['alice', 'bob']) {
        while (inbox[me].length) {
          moved = true;
          const msg = inbox[me].shift();
          await channels[me].read(msg).catch(() => {});
        }
      }
      if (!moved) {
        await tick();
        if (!inbox.alice.length && !inbox.bob.length) return;
      }
    }
  };
  const close = async () => {
    await Promise.all([otrs.alice.close(), otrs.bob.close()]);
    for (const d of Object.values(dirs)) fs.rmSync(d, { recursive: true, force: true });
  };
  return { otrs, accounts, channels, inbox, received, secure, pump, close, dirs };
}

function kindOf(msg) {
  if (msg.startsWith('?OTR Error:')) return 'error';
  if (msg.startsWith('?OTR|')) return 'fragment-v3';
  if (msg.startsWith('?OTR,')) return 'fragment-v2';
  if (/^\?OTRv?\d*\?/.test(msg)) return 'query';
  if (msg.includes(' \t  \t\t\t\t \t \t \t  ')) return 'whitespace-tag';
  const m = /^\?OTR:([A-Za-z0-9+/]{4})/.exec(msg);
  if (m) {
    const head = Buffer.from(m[1], 'base64');
    const type = { 0x02: 'dh-commit', 0x0a: 'dh-key', 0x11: 'reveal-sig', 0x12: 'sig', 0x03: 'data' }[head[2]] ?? 'otr';
    return `${type}-v${head[1]}`;
  }
  return 'plain';
}

async function capture() {
  const seen = new Map();
  const record = (from, msg) => {
    const kind = kindOf(msg);
    const list = seen.get(kind) ?? [];
    // Keep the corpus small: a few of each kind.
    const limit = kind.startsWith('data') ? 16 : 6;
    if (list.length < limit && !list.some((m) => m.msg === msg)) list.push({ from, msg });
    seen.set(kind, list);
  };

  // 1. v3, Alice starts the AKE with a query; data, SMP with a question, symkey, finish.
  {
    const p = await makePair({ record, onSmp: () => 'the answer' });
    await p.channels.alice.write('hello in clear (whitespace tag)');
    await p.pump();
    await p.channels.alice.init();
    await p.pump();
    await p.channels.alice.write('hello, encrypted');
    await p.channels.bob.write('hi back, encrypted — ünïcödé');
    await p.pump();
    await p.channels.alice.smpVerify('the answer', 'what is it?');
    await p.pump();
    await p.channels.bob.smpVerify('the answer');
    await p.pump();
    await p.channels.alice.createSymkey(7, 'file transfer');
    await p.pump();
    await p.channels.bob.refresh(); // Bob starts the next AKE
    await p.pump();
    await p.channels.alice.write('after refresh');
    await p.pump();
    await p.channels.alice.finish(); // disconnect TLV
    await p.pump();
    await p.channels.alice.write('plain after finish');
    await p.pump();
    await p.close();
  }
  // 2. v3 with fragmentation: fragmented AKE and data messages.
  {
    const p = await makePair({ record, maxMessageSize: 160 });
    await p.channels.bob.init();
    await p.pump();
    await p.channels.alice.write('a fragmented message '.repeat(20));
    await p.pump();
    await p.close();
  }
  // 3. v2 only (no instance tags), fragmented too.
  {
    const policy = Policy.ALLOW_V2 | Policy.SEND_WHITESPACE_TAG | Policy.WHITESPACE_START_AKE | Policy.ERROR_START_AKE;
    const p = await makePair({ record, policy, maxMessageSize: 200 });
    await p.channels.alice.init();
    await p.pump();
    await p.channels.alice.write('version 2 data '.repeat(10));
    await p.pump();
    await p.close();
  }
  // 3b. v2 unfragmented.
  {
    const policy = Policy.ALLOW_V2 | Policy.ERROR_START_AKE;
    const p = await makePair({ record, policy });
    await p.channels.bob.init();
    await p.pump();
    await p.channels.bob.write('version 2 data');
    await p.pump();
    await p.close();
  }
  // 4. An error: Bob without a session receives Alice's data message.
  {
    const p = await makePair({ record });
    await p.channels.alice.init();
    await p.pump();
    await p.channels.bob.refresh().catch(() => {});
    p.inbox.alice.length = 0; // drop Bob's query: Bob stays in plaintext
    await p.channels.alice.write('you are not private');
    await p.pump();
    await p.close();
  }

  // libotr 4.1 reports a data message received without a session as an event and injects no
  // error reply (checked above), so the error messages are written as libotr formats them:
  // "?OTR Error: " + the otr_error_message text (ours, see src-native/ui_ops.cc).
  for (const text of [
    "You sent encrypted data to a peer who wasn't expecting it.",
    'You transmitted an unreadable encrypted message.',
    'You transmitted a malformed data message.',
    'Error occurred encrypting message.',
  ])
    record('bob', `?OTR Error: ${text}`);
  record('alice', 'just some plain text, no tag');

  fs.rmSync(CORPUS, { recursive: true, force: true });
  fs.mkdirSync(CORPUS, { recursive: true });
  let count = 0;
  for (const [kind, list] of [...seen].sort()) {
    list.forEach(({ from, msg }, i) => {
      fs.writeFileSync(path.join(CORPUS, `${kind}-${from}-${i}`), msg);
      count++;
    });
  }
  console.log(`wrote ${count} messages to ${path.relative(process.cwd(), CORPUS)}:`);
  for (const [kind, list] of [...seen].sort()) console.log(`  ${kind}: ${list.length}`);
}

// Not a test: `node --test test/` runs every file under test/, and must not rewrite the corpus.
if (process.argv[1] === fileURLToPath(import.meta.url) && !process.env.NODE_TEST_CONTEXT) {
  if (process.argv.includes('--new-keys') || !fs.existsSync(path.join(KEYS, 'bob', 'otr.private_key'))) await newKeys();
  await capture();
}
