// One node of a bridge over a shared PostgresStore, driven by the test that forked it: each
// IPC message { id, cmd, ... } is a command, answered with { id, result } or { id, error };
// what the node's channels and store do is sent as { event, ... } as it happens.
import fs from 'node:fs';
import path from 'node:path';
import { OTR, PostgresStore } from 'protocol-otr';

let otr;
let store;
let account;
let remoteChanges = 0;
let talking;
const whenTalking = (cond) =>
  new Promise((resolve) => {
    talking.wake = () => cond() && resolve();
    talking.wake();
  });
const waiters = [];

const send = (message) => process.send?.(message);
let routerOfAccount;
const router = () => (routerOfAccount ??= account.router(routedCallbacks()));

function callbacks(contact) {
  return {
    onWrite: (_c, text) => send({ event: 'write', contact, text, confirmedAt: store.confirmedAt, at: Date.now() }),
    onRead: (_c, text) => send({ event: 'read', contact, text, confirmedAt: store.confirmedAt, at: Date.now() }),
    onGoneSecure: () => send({ event: 'secure', contact }),
    onEvent: (_c, code) => send({ event: 'otrEvent', contact, code }),
  };
}

function routedCallbacks() {
  const of = (channel) => callbacks(channel.contact.name);
  return {
    onWrite: (c, text) => of(c).onWrite(c, text),
    onRead: (c, text) => of(c).onRead(c, text),
    onGoneSecure: (c) => of(c).onGoneSecure(c),
    onEvent: (c, code) => of(c).onEvent(c, code),
  };
}

const commands = {
  async open({ connection, prefix, node, accounts, leaseTimeoutSeconds, workDir }) {
    store = new PostgresStore({ connection, prefix, node, accounts, leaseTimeoutSeconds, workDir });
    otr = await OTR.open({ store });
    otr.on('error', (error) => send({ event: 'error', code: error.code, message: error.message }));
    otr.on('leasesLost', (leases, why) => send({ event: 'leasesLost', contacts: leases.map((l) => l.contact), why, at: Date.now() }));
    otr.on('leasesSuspended', (leases, why) => send({ event: 'leasesSuspended', contacts: leases.map((l) => l.contact), why, at: Date.now() }));
    otr.on('leasesRestored', (leases) => send({ event: 'leasesRestored', contacts: leases.map((l) => l.contact), at: Date.now() }));
    otr.on('trustChanged', (change) => {
      if (change.origin !== 'remote') return;
      remoteChanges++;
      send({ event: 'trust', change, at: Date.now() });
      while (waiters.length && waiters[0].n <= remoteChanges) waiters.shift().resolve(remoteChanges);
    });
    account = otr.findAccount(accounts[0].name, accounts[0].protocol);
    return { fingerprint: account.fingerprint, instag: account.instanceTag, keysGenerated: store.keysGenerated };
  },
  async lease({ contact, waitMs }) {
    const lease = await store.lease(account.name, account.protocol, contact, { waitMs });
    return { ...lease, at: Date.now() };
  },
  async release({ contact }) {
    await store.release(account.name, account.protocol, contact);
  },
  // Takes these contacts' leases at once; resolves with how many, once all are held.
  async leaseMany({ contacts, waitMs }) {
    await Promise.all(contacts.map((contact) => store.lease(account.name, account.protocol, contact, { waitMs })));
    return contacts.length;
  },
  leases() {
    return store.leases().map((l) => l.contact);
  },
  owner({ contact }) {
    return store.owner(account.name, account.protocol, contact);
  },
  statements() {
    return store.statements;
  },
  // The contact renamed through a router (as a bridge does on a NICK) or the contact itself.
  async rename({ from, to, via = 'router' }) {
    if (via === 'router') await account.router(callbacks(from)).rename(from, to);
    else await account.findContact(from).rename(to);
    return true;
  },
  // Every contact with its fingerprints, by name.
  contacts() {
    return Object.fromEntries(account.contacts().map((c) => [c.name, c.fingerprints().map((f) => ({ hash: f.hash, trust: f.trust }))]));
  },
  memory() {
    globalThis.gc?.();
    return process.memoryUsage().heapUsed;
  },
  async channel({ contact, start, existing }) {
    const channel = existing ? account.findContact(contact).existingChannel : (await account.contact(contact)).channel(callbacks(contact));
    if (start) await channel.init();
    return true;
  },
  // Through a router, as a bridge calls them: a contact whose channel is gone is ERR_OTR_NOT_OWNER
  // unless this node holds its lease.
  async read({ contact, text }) {
    await router().read(contact, text);
  },
  async write({ contact, text }) {
    await router().write(contact, text);
  },
  async trust({ contact, hex, verified }) {
    const c = await account.contact(contact, hex, verified);
    if (!verified)
      await c
        .fingerprints()
        .find((f) => f.hash.replace(/ /g, '').toLowerCase() === hex)
        .setVerified(false);
    return Date.now();
  },
  async trustMany({ items }) {
    await Promise.all(items.map(({ contact, hex }) => account.contact(contact, hex, true)));
    return items.length;
  },
  waitRemoteChanges({ n }) {
    if (remoteChanges >= n) return remoteChanges;
    return new Promise((resolve) => waiters.push({ n, resolve }));
  },
  hasChannel({ contact }) {
    return Boolean(account.findContact(contact)?.existingChannel);
  },
  fingerprints({ contact }) {
    return (account.findContact(contact)?.fingerprints() ?? []).map((f) => ({ hash: f.hash, trust: f.trust }));
  },
  verifiedCount() {
    return account.contacts().reduce((sum, c) => sum + c.fingerprints().filter((f) => f.isVerified).length, 0);
  },
  // Secure sessions with these contacts (owned here), with remote users over files in `dir`,
  // in this process; resolves once the users' fingerprints seen in the AKEs are stored.
  async secure({ contacts, dir }) {
    const users = new OTR({ privkeysFile: path.join(dir, 'k'), contactsFile: path.join(dir, 'f'), instanceTagsFile: path.join(dir, 'i') });
    talking = { users, dir, pairs: [], received: 0, secured: 0, wake: undefined };
    const counted = () => (talking.received++, talking.wake?.());
    const gone = () => (talking.secured++, talking.wake?.());
    for (const contact of contacts) {
      const user = await users.account(contact, account.protocol);
      const pair = {};
      pair.bridge = (await account.contact(contact)).channel({ onWrite: (_c, text) => pair.user.read(text), onRead: counted, onGoneSecure: gone });
      pair.user = (await user.contact(account.name)).channel({ onWrite: (_c, text) => pair.bridge.read(text), onRead: counted, onGoneSecure: gone });
      talking.pairs.push(pair);
    }
    const allSecure = whenTalking(() => talking.secured >= 2 * talking.pairs.length);
    await Promise.all(talking.pairs.map((pair) => pair.bridge.init()));
    await allSecure;
    for (const contact of contacts) await account.contact(contact);
    return contacts.length;
  },
  // `messages` data messages each way in every session secure() made: the statements the
  // store sent over them.
  async talk({ messages }) {
    const { pairs, users, dir } = talking;
    try {
      const before = store.statements;
      const total = talking.received + messages * 2 * pairs.length;
      const all = whenTalking(() => talking.received >= total);
      let fail;
      const failed = new Promise((_resolve, reject) => (fail = reject));
      for (let i = 0; i < messages; i++) {
        for (const pair of pairs) {
          pair.bridge.write(`to the user ${i}`).catch(fail);
          pair.user.write(`to the bridge ${i}`).catch(fail);
        }
      }
      await Promise.race([all, failed]);
      return { messages: messages * 2 * pairs.length, statements: store.statements - before };
    } finally {
      await users.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
  async close() {
    await otr.close();
    setImmediate(() => process.exit(0));
    return { statements: store.statements };
  },
};

process.on('message', async ({ id, cmd, ...args }) => {
  try {
    send({ id, result: (await commands[cmd](args)) ?? null });
  } catch (error) {
    send({ id, error: { code: error.code, message: error.message, owner: error.owner } });
  }
});
send({ event: 'ready' });
