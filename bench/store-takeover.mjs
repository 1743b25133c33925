// The takeover scenario of `npm run bench -- --store`: 4 nodes (child processes,
// test/helpers/pg-node.mjs) share 1,000 contacts split by the consistent hash of
// examples/multi-node; one is killed with -9 and the 3 others take its contacts, as the ring
// without it says. Figures per run:
//   - the baseline: the time for the 4 nodes to take their shares at start (every lease free);
//   - the takeover: from kill -9 until every contact of the dead node is owned again (target 2 s);
//   - SQL statements per data message: `store.statements` over data messages alone, on each
//     live node, in secure sessions with a contact it had and one it took over (target 0;
//     see talkOnNodes for why the AKEs' own statements cannot fall in that phase).
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashRing, talkOnNodes } from '../test/helpers/ring-scenario.mjs';

const NODE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'helpers', 'pg-node.mjs');
const NAMES = ['node-a', 'node-b', 'node-c', 'node-d'];
const VICTIM = 'node-c';
const ACCOUNT = { name: 'bridge@example.org', protocol: 'prpl-jabber' };

function startNode(name, workDir) {
  const child = fork(NODE, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map();
  let nextId = 1;
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const ready = new Promise((resolve) => child.on('message', (m) => m.event === 'ready' && resolve()));
  child.on('message', (m) => {
    if (m.id === undefined) return;
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) p?.reject(Object.assign(new Error(m.error.message), m.error));
    else p?.resolve(m.result);
  });
  exited.then(() => pending.forEach(({ reject }) => reject(new Error(`${name} exited`))));
  const call = (cmd, args = {}) =>
    new Promise((resolve, reject) => {
      if (!child.connected) return reject(new Error(`${name} exited`));
      pending.set(nextId, { resolve, reject });
      child.send({ id: nextId++, cmd, ...args });
    });
  return { name, child, exited, ready, call, workDir };
}

async function run(connection, prefix, contacts, messages) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-takeover-'));
  const nodes = Object.fromEntries(NAMES.map((n) => [n, startNode(n, dir)]));
  const live = NAMES.filter((n) => n !== VICTIM);
  try {
    await Promise.all(Object.values(nodes).map((n) => n.ready));
    await Promise.all(Object.values(nodes).map((n) => n.call('open', { connection, prefix, node: n.name, accounts: [ACCOUNT], workDir: dir })));
    const first = hashRing(NAMES);
    let t0 = performance.now();
    await Promise.all(NAMES.map((n) => nodes[n].call('leaseMany', { contacts: contacts.filter((c) => first(c) === n) })));
    const split = performance.now() - t0;

    const moved = contacts.filter((c) => first(c) === VICTIM);
    const next = hashRing(live);
    nodes[VICTIM].child.kill('SIGKILL');
    t0 = performance.now();
    await nodes[VICTIM].exited;
    await Promise.all(live.map((n) => nodes[n].call('leaseMany', { contacts: moved.filter((c) => next(c) === n), waitMs: 10_000 })));
    const takeover = performance.now() - t0;
    const owned = (await Promise.all(live.map((n) => nodes[n].call('leases')))).flat();
    if (owned.length !== contacts.length || new Set(owned).size !== contacts.length)
      throw new Error(`${owned.length} leases held for ${contacts.length} contacts`);

    const who = Object.fromEntries(live.map((n) => [n, [contacts.find((c) => first(c) === n), moved.find((c) => next(c) === n)].filter(Boolean)]));
    const talks = await talkOnNodes(nodes, who, messages, () => fs.mkdtempSync(path.join(dir, 'users-')));
    const sent = talks.reduce((sum, r) => sum + r.messages, 0);
    const statements = talks.reduce((sum, r) => sum + r.statements, 0);
    return { split, takeover, moved: moved.length, sent, statements };
  } finally {
    await Promise.all(live.map((n) => nodes[n].call('close').catch(() => {})));
    for (const n of Object.values(nodes)) n.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the scenario `repeats` times and prints the figures. */
export async function takeoverScenario({ connection, repeats, messages, contacts: count = 1000 }) {
  const contacts = Array.from({ length: count }, (_, i) => `user${i}@example.net`);
  const runs = [];
  for (let r = 0; r < repeats; r++) {
    process.stderr.write(`takeover run ${r + 1}/${repeats}... `);
    const m = await run(connection, `takeover${r}_`, contacts, messages);
    runs.push(m);
    process.stderr.write(`${m.takeover.toFixed(0)} ms\n`);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const split = median(runs.map((m) => m.split));
  const takeover = median(runs.map((m) => m.takeover));
  const row = (what, figure) => console.log(`  ${what.padEnd(52)} ${figure}`);
  console.log(`\ntakeover: ${NAMES.length} nodes × ${count.toLocaleString('en-US')} contacts (consistent hash), kill -9 of ${VICTIM}, medians of ${repeats}`);
  row(`baseline: the ${NAMES.length} nodes take their shares at start`, `${split.toFixed(0)} ms (${runs.map((m) => m.split.toFixed(0)).join(', ')})`);
  row(
    `kill -9 until its ${runs[0].moved} contacts are owned again`,
    `${takeover.toFixed(0)} ms (${runs.map((m) => m.takeover.toFixed(0)).join(', ')}; target 2,000 ms)`,
  );
  row('takeover / baseline', `${(takeover / split).toFixed(2)}×`);
  row('SQL statements / data messages', `${runs.map((m) => `${m.statements} / ${m.sent}`).join(', ')} (target 0 per message)`);
}
