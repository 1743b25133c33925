// Two bridge nodes sharing one PostgreSQL: contacts split between them by a consistent hash,
// one node killed with -9 mid-conversation, the other taking its contacts over.
//
//   npm run demo:multi-node                      (starts a throwaway PostgreSQL: Debian's postgresql)
//   DATABASE_URL=postgresql://… node examples/multi-node/run.mjs
//
// The remote users are OTR clients in this process; the "network" is this process routing
// each user's messages to the node the hash ring gives for that user.
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OTR, Policy } from 'protocol-otr';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'].map((u) => `${u}@example.net`);
const log = (text) => console.log(text);

let server;
let connection = process.env.DATABASE_URL;
if (!connection) {
  const { startPostgres } = await import(path.join(HERE, '..', '..', 'scripts', 'throwaway-postgres.mjs'));
  server = await startPostgres();
  connection = server.url;
  log(`throwaway PostgreSQL on ${server.dir}`);
}

// The consistent-hash ring: 64 points per live node; a user goes to the first point after hers.
const hash = (text) => createHash('sha256').update(text).digest().readUInt32BE(0);
let ring = [];
function setRing(nodes) {
  ring = nodes.flatMap((n) => Array.from({ length: 64 }, (_, i) => ({ at: hash(`${n}#${i}`), node: n }))).sort((a, b) => a.at - b.at);
}
const ownerOf = (user) => (ring.find((p) => p.at >= hash(user)) ?? ring[0]).node;

// Waiting for something to become true, re-checked whenever anything happens.
const waits = new Set();
const happened = () => [...waits].forEach((w) => w());
const until = (cond) =>
  new Promise((resolve) => {
    const check = () => cond() && (waits.delete(check), resolve());
    waits.add(check);
    check();
  });

// The bridge nodes.
const nodes = {};
function startNode(name) {
  // The nodes' working copies go in this run's temp dir, removed at the end (a node killed
  // with -9 cannot remove its own).
  const child = fork(path.join(HERE, 'bridge-node.mjs'), [name, connection, dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const node = { name, child, ready: undefined };
  node.ready = new Promise((resolve) =>
    child.on('message', (m) => {
      if (m.type === 'ready') resolve(m);
      else if (m.type === 'log') log(`  [${m.node}] ${m.text}`);
      else if (m.type === 'outgoing') users[m.contact].channel.read(m.text).catch((e) => log(`  ${m.contact} could not read: ${e.message}`));
    }),
  );
  node.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  nodes[name] = node;
  return node;
}

// The remote users: OTR clients that require encryption (their words wait for the AKE).
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'protocol-otr-users-'));
const clients = new OTR({ privkeysFile: path.join(dir, 'k'), contactsFile: path.join(dir, 'f'), instanceTagsFile: path.join(dir, 'i') });
const users = {};
for (const user of USERS) {
  const account = await clients.account(user, 'prpl-jabber');
  const state = { secure: 0, echoes: [] };
  state.channel = (await account.contact('bridge@example.org')).channel({
    policy: Policy.ALWAYS,
    onWrite: (_c, text) => nodes[ownerOf(user)].child.send({ type: 'incoming', contact: user, text }),
    onRead: (_c, text) => (state.echoes.push(text), happened()),
    onGoneSecure: () => (state.secure++, happened()),
  });
  users[user] = state;
}

try {
  const [a, b] = await Promise.all([startNode('node-a').ready, startNode('node-b').ready]);
  log(`node-a and node-b share one identity: ${a.fingerprint} / ${b.fingerprint}, instance tag ${a.instag.toString(16)} / ${b.instag.toString(16)}`);
  setRing(['node-a', 'node-b']);
  for (const user of USERS) log(`${user} -> ${ownerOf(user)}`);

  const round = async (text, who = USERS) => {
    const before = Object.fromEntries(who.map((u) => [u, users[u].echoes.length]));
    await Promise.all(who.map((u) => users[u].channel.write(`${text}`)));
    await until(() => who.every((u) => users[u].echoes.length > before[u]));
    for (const u of who) log(`${u} got "${users[u].echoes.at(-1)}"`);
  };
  await round('hello');
  await round('how are you?');

  const victim = USERS.filter((u) => ownerOf(u) === 'node-a').length >= 3 ? 'node-a' : 'node-b';
  const survivor = victim === 'node-a' ? 'node-b' : 'node-a';
  const moved = USERS.filter((u) => ownerOf(u) === victim);
  log(`\nkill -9 ${victim} (owner of ${moved.join(', ')}) mid-conversation`);
  nodes[victim].child.kill('SIGKILL');
  const killedAt = Date.now();
  await nodes[victim].exited;
  setRing([survivor]);

  // The moved users do not know: their next words go, encrypted with the dead session's keys, to the survivor.
  const secureBefore = Object.fromEntries(moved.map((u) => [u, users[u].secure]));
  await Promise.all(moved.map((u) => users[u].channel.write('are you still there? (sent into the dead session)')));
  await until(() => moved.every((u) => users[u].secure > secureBefore[u]));
  log(`${survivor} renegotiated with ${moved.length} contacts ${Date.now() - killedAt} ms after the kill`);
  await round('back again');
  log(`\nlost: each moved user's message sent into the dead session (see docs/MULTI-NODE.md); everything after the new AKE arrived.`);
  nodes[survivor].child.send({ type: 'close' });
  await nodes[survivor].exited;
} finally {
  for (const node of Object.values(nodes)) node.child.kill('SIGKILL');
  await clients.close();
  fs.rmSync(dir, { recursive: true, force: true });
  await server?.stop();
}
