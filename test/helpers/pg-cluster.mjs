// Nodes of a bridge over one PostgreSQL for the multi-node tests: each node a child process
// (pg-node.mjs) driven over IPC, optionally inside a network namespace; and a remote user, an
// OTR instance over files in the test's process whose wire goes to whichever node owns her.
import { fork, spawn } from 'node:child_process';
import path from 'node:path';
import { OTR } from 'protocol-otr';
import { REPO, tmpdir, filesIn } from './harness.mjs';

const CHILD = path.join(REPO, 'test', 'helpers', 'pg-node.mjs');
export const ACCOUNT = { name: 'bridge@example.org', protocol: 'prpl-jabber' };
export const children = new Set();

// A node: call(cmd, args), on(listener), next(test). `netns`: run it in that network namespace.
export function startNode(name, { env, netns } = {}) {
  const options = { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: env && { ...process.env, ...env } };
  const child = netns ? spawn('ip', ['netns', 'exec', netns, process.execPath, CHILD], options) : fork(CHILD, [], options);
  children.add(child);
  const pending = new Map();
  const listeners = new Set();
  let nextId = 1;
  const ready = new Promise((resolve) => listeners.add((m) => m.event === 'ready' && resolve()));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => {
    children.delete(child);
    for (const { reject } of pending.values()) reject(new Error(`${name} exited`));
  });
  child.on('message', (m) => {
    if (m.id !== undefined) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p?.reject(Object.assign(new Error(m.error.message), m.error));
      else p?.resolve(m.result);
    } else for (const l of listeners) l(m);
  });
  return {
    name,
    child,
    exited,
    ready,
    call(cmd, args = {}) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        if (!child.connected) return reject(new Error(`${name} exited`));
        pending.set(id, { resolve, reject });
        // A node exiting meanwhile: the send fails here, not as an 'error' event of the child.
        child.send({ id, cmd, ...args }, (error) => {
          if (!error) return;
          pending.delete(id);
          reject(error);
        });
      });
    },
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    next(test) {
      return new Promise((resolve) => {
        const off = this.on((m) => {
          if (test(m)) {
            off();
            resolve(m);
          }
        });
      });
    },
  };
}

export const closeNodes = (nodes) =>
  Promise.all(
    nodes.map((n) =>
      n
        .call('close')
        .catch(() => {})
        .then(() => n.exited),
    ),
  );

export function killNodes() {
  for (const child of children) child.kill('SIGKILL');
}

/**
 * A remote user talking to the bridge account: `owner` is the node her messages go to
 * (settable); `relay(node)` feeds that node's writes for her to her channel.
 */
export async function remoteUser(name) {
  const otr = new OTR(filesIn(tmpdir('otr-remote-')));
  const account = await otr.account(name, ACCOUNT.protocol);
  const user = { name, otr, owner: undefined, received: [], secure: 0, events: [] };
  const waits = new Set();
  const changed = () => waits.forEach((w) => w());
  user.sees = (cond) =>
    new Promise((resolve) => {
      const check = () => cond() && (waits.delete(check), resolve());
      waits.add(check);
      check();
    });
  user.channel = (await account.contact(ACCOUNT.name)).channel({
    onWrite: (_c, text) => user.owner?.call('read', { contact: name, text }).catch(() => {}),
    onRead: (_c, text) => (user.received.push(text), changed()),
    onGoneSecure: () => (user.secure++, changed()),
    onEvent: (_c, code) => (user.events.push(code), changed()),
  });
  user.relay = (node) => node.on((m) => m.event === 'write' && m.contact === name && user.channel.read(m.text));
  // Leases the contact on `node`, opens its channel there and goes private.
  user.connect = async (node) => {
    user.owner = node;
    user.relay(node);
    const lease = await node.call('lease', { contact: name });
    const secure = node.next((m) => m.event === 'secure' && m.contact === name);
    const before = user.secure;
    await node.call('channel', { contact: name, start: true });
    await secure;
    await user.sees(() => user.secure === before + 1);
    return lease;
  };
  return user;
}
