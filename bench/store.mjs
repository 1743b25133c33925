// `npm run bench -- --store [--quick]`: what the PostgreSQL store costs next to the file store,
// on the same work in the same run. Two figures per store:
//   - a new fingerprint: account.contact(name, fingerprint) for contacts never seen (the
//     file store rewrites its file, the PostgreSQL store inserts one row and notifies);
//   - a data message: one encrypted message bridge -> user and its reading, in a secure
//     session (neither store should do anything: the statements the PostgreSQL store sent
//     over the phase are counted and printed).
// Prints both stores' medians and the ratios PostgreSQL / files. Then the takeover scenario
// (bench/store-takeover.mjs): 4 nodes × 1,000 contacts, one killed with -9, the time until
// its contacts are owned again and the SQL statements per data message. Uses
// BENCH_DATABASE_URL, or a throwaway PostgreSQL (scripts/throwaway-postgres.mjs; the takeover
// over TCP on the loopback).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { OTR, PostgresStore } from 'protocol-otr';
import { startPostgres } from '../scripts/throwaway-postgres.mjs';
import { takeoverScenario } from './store-takeover.mjs';

const quick = process.argv.includes('--quick');
const FINGERPRINTS = quick ? 50 : 500;
const MESSAGES = quick ? 200 : 3000;
const REPEATS = quick ? 1 : 3;
const ACCOUNT = { name: 'bridge@example.org', protocol: 'prpl-jabber' };

let server;
let connection = process.env.BENCH_DATABASE_URL;
let tcpConnection = connection;
if (!connection) {
  server = await startPostgres({ tcp: ['127.0.0.1'] });
  connection = server.connection;
  tcpConnection = server.tcpConnection();
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const dirs = [];
const tmp = (p) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), p));
  dirs.push(d);
  return d;
};
const filesIn = (d) => ({ privkeysFile: path.join(d, 'k'), contactsFile: path.join(d, 'f'), instanceTagsFile: path.join(d, 'i') });

// The remote user, over files, shared by every run.
const user = new OTR(filesIn(tmp('bench-store-user-')));
const userAccount = await user.account('user@example.net', 'prpl-jabber');

async function openBridge(kind, run) {
  if (kind === 'files') {
    const otr = new OTR(filesIn(tmp('bench-store-files-')));
    await otr.account(ACCOUNT.name, ACCOUNT.protocol);
    return { otr, store: undefined };
  }
  const store = new PostgresStore({ connection, prefix: `bench${run}_`, node: `bench-${run}`, accounts: [ACCOUNT] });
  return { otr: await OTR.open({ store }), store };
}

async function measure(kind, run) {
  const { otr, store } = await openBridge(kind, run);
  const account = otr.findAccount(ACCOUNT.name, ACCOUNT.protocol);
  // New fingerprints.
  let t0 = performance.now();
  for (let i = 0; i < FINGERPRINTS; i++) {
    await account.contact(`contact${i}@example.net`, (i + 1).toString(16).padStart(40, '0'));
  }
  const perFingerprint = (performance.now() - t0) / FINGERPRINTS;

  // A secure session and data messages one way.
  if (store) await store.lease(ACCOUNT.name, ACCOUNT.protocol, 'user@example.net');
  let userChannel;
  let received = 0;
  let wake;
  const bridgeChannel = (await account.contact('user@example.net')).channel({
    onWrite: (_c, text) => userChannel.read(text),
    onRead: () => {},
  });
  userChannel = (await userAccount.contact(ACCOUNT.name)).channel({
    onWrite: (_c, text) => bridgeChannel.read(text),
    onRead: () => {
      received++;
      wake?.();
    },
  });
  const secure = new Promise((resolve) => {
    const check = () => (bridgeChannel.status === 'Unverified' || bridgeChannel.status === 'Private' ? resolve() : setImmediate(check));
    check();
  });
  await bridgeChannel.init();
  await secure;
  await store?._settled(); // the row of the user's fingerprint, seen in the AKE
  const before = store?.statements ?? 0;
  received = 0;
  t0 = performance.now();
  for (let i = 0; i < MESSAGES; i++) bridgeChannel.write(`message ${i} ${'x'.repeat(100)}`);
  await new Promise((resolve) => {
    wake = () => received >= MESSAGES && resolve();
    wake();
  });
  const perMessage = ((performance.now() - t0) * 1000) / MESSAGES;
  const statements = (store?.statements ?? 0) - before;
  await userChannel.close();
  await otr.close();
  return { perFingerprint, perMessage, statements };
}

try {
  const results = { files: [], postgres: [] };
  for (let r = 0; r < REPEATS; r++) {
    for (const kind of ['files', 'postgres']) {
      process.stderr.write(`store ${kind} run ${r + 1}/${REPEATS}... `);
      const m = await measure(kind, r);
      results[kind].push(m);
      process.stderr.write(`${m.perFingerprint.toFixed(3)} ms/fingerprint, ${m.perMessage.toFixed(1)} µs/message\n`);
    }
  }
  const fp = (k) => median(results[k].map((m) => m.perFingerprint));
  const msg = (k) => median(results[k].map((m) => m.perMessage));
  console.log(`\nstore          new fingerprint (ms, median of ${REPEATS} × ${FINGERPRINTS})   data message (µs, median of ${REPEATS} × ${MESSAGES})`);
  console.log(`files          ${fp('files').toFixed(3).padEnd(46)} ${msg('files').toFixed(1)}`);
  console.log(`postgres       ${fp('postgres').toFixed(3).padEnd(46)} ${msg('postgres').toFixed(1)}`);
  console.log(`postgres/files ${`${(fp('postgres') / fp('files')).toFixed(2)}×`.padEnd(46)} ${(msg('postgres') / msg('files')).toFixed(2)}×`);
  console.log(
    `SQL statements the PostgreSQL store sent during the data messages: ${results.postgres.map((m) => m.statements).join(', ')} (of ${MESSAGES} messages per run)`,
  );
  await takeoverScenario({ connection: tcpConnection, repeats: REPEATS, messages: quick ? 50 : 500 });
} finally {
  await user.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  await server?.stop();
}
