// One node of a bridge over a shared PostgresStore, driven by the test that forked it: each
// IPC message { id, cmd, ... } is a command, answered with { id, result } or { id, error };
// what the node's channels and store do is sent as { event, ... } as it happens.
import { OTR, PostgresStore } from 'protocol-otr';

let otr;
let store;
let account;
let remoteChanges = 0;
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
  leases() {
    return store.leases().map((l) => l.contact);
  },
  async release({ contact }) {
    await store.release(account.name, account.protocol, contact);
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
    if (!verified) await c.fingerprints().find((f) => f.hash.replace(/ /g, '').toLowerCase() === hex).setVerified(false);
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
  async close() {
    await otr.close();
    setImmediate(() => process.exit(0));
    return true;
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
