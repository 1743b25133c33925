// One node of a bridge behind one account, sharing its identity, trust and contact leases
// with the other nodes through PostgreSQL (docs/MULTI-NODE.md). Its "transport" is the parent
// process (run.mjs): { type: 'incoming', contact, text } in, { type: 'outgoing', contact, text }
// out. It echoes what each contact says, encrypted.
//
//   node bridge-node.mjs <node name> <connection string> [<work dir>]
import { OTR, PostgresStore, MessageEvent } from 'protocol-otr';

const [node, connection, workDir] = process.argv.slice(2);
const ACCOUNT = { name: 'bridge@example.org', protocol: 'prpl-jabber' };
const say = (text) => process.send({ type: 'log', node, text });

// workDir: where this node's working copy of the files (its key included) lives while it runs.
const store = new PostgresStore({ connection, node, accounts: [ACCOUNT], prefix: 'demo_', workDir });
const otr = await OTR.open({ store });
const account = otr.findAccount(ACCOUNT.name, ACCOUNT.protocol);
otr.on('error', (error) => say(`error ${error.code}: ${error.message}`));
otr.on('trustChanged', (c) => {
  const what = c.forgotten ? 'forgotten' : c.verified ? 'verified' : 'seen (not verified)';
  if (c.origin === 'remote') say(`${c.contact}'s fingerprint ${what} by ${c.node}, now known here too`);
});

// Every contact's channel comes from one router: opened at once (no await between taking the
// lease and the query), with the same callbacks for everyone.
const router = account.router({
  onWrite: (c, text) => process.send({ type: 'outgoing', contact: c.contact.name, text }),
  onRead: (c, text) => {
    say(`${c.contact.name}: ${text}`);
    c.write(`echo from ${node}: ${text}`).catch((e) => say(`write failed: ${e.message}`));
  },
  onGoneSecure: (c) => say(`private with ${c.contact.name}`),
  onEvent: (c, code) => {
    if (code === MessageEvent.RCVDMSG_NOT_IN_PRIVATE) say(`a message from ${c.contact.name} was sent into a session this node does not have: lost`);
  },
});

// A contact's channel, after taking its lease (waiting up to 15 s for a dead owner's to end).
const opening = new Map();
function channelFor(contact) {
  if (!opening.has(contact)) {
    opening.set(
      contact,
      (async () => {
        const started = Date.now();
        await store.lease(ACCOUNT.name, ACCOUNT.protocol, contact, { waitMs: 15_000 });
        say(`owns ${contact} (lease taken in ${Date.now() - started} ms)`);
        const channel = router.channel(contact);
        // A query: a contact whose session died with another node renegotiates at once.
        await channel.init();
        return channel;
      })(),
    );
  }
  return opening.get(contact);
}

process.on('message', async (message) => {
  if (message.type === 'incoming') {
    try {
      await (await channelFor(message.contact)).read(message.text);
    } catch (error) {
      say(`cannot take ${message.contact}: ${error.code} ${error.message}`);
    }
  } else if (message.type === 'close') {
    await otr.close();
    process.exit(0);
  }
});
process.send({ type: 'ready', node, fingerprint: account.fingerprint, instag: account.instanceTag });
