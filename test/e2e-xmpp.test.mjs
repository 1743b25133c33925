// End to end over a real XMPP server: prosody on loopback, started and stopped here, two
// bridges talking through it with @xmpp/client (a development dependency only).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { client as xmppClient, xml } from '@xmpp/client';
import { makeKeys, runConversation } from './helpers/e2e-scenario.mjs';
import { serverMissing, startProsody, stopAllServers } from './helpers/servers.mjs';

const missing = serverMissing('prosody');
const T = { timeout: 240_000, skip: missing };
const PROTOCOL = 'prpl-jabber';

async function connect(server, user, password) {
  const x = xmppClient({
    service: `xmpp://${server.host}:${server.port}`,
    domain: server.domain,
    resource: 'bridge',
    // PLAIN over loopback: @xmpp/client would otherwise pick SCRAM, 2 s of PBKDF2 in JS.
    credentials: (auth) => auth({ username: user, password }, 'PLAIN'),
  });
  const stats = { stanzasOut: 0, messagesIn: 0, errors: [], offline: false };
  x.on('error', (error) => stats.errors.push(String(error)));
  x.on('offline', () => (stats.offline = true));
  let handler = () => {};
  let available;
  const nowAvailable = new Promise((resolve) => (available = resolve));
  x.on('stanza', (stanza) => {
    // The server reflects our initial presence to us once it has made us available (RFC 6121,
    // 4.2.2): from then on, messages to our bare JID reach this resource instead of bouncing.
    if (stanza.is('presence') && stanza.attrs.from === String(x.jid) && stanza.attrs.type === undefined) available();
    if (!stanza.is('message')) return;
    if (stanza.attrs.type === 'error') return stats.errors.push(stanza.toString());
    const body = stanza.getChildText('body');
    if (body === null) return;
    stats.messagesIn++;
    handler(stanza.attrs.from.split('/')[0], body);
  });
  clients.add(x);
  await x.start();
  await x.send(xml('presence'));
  await nowAvailable;
  // One stanza after the other, in the order the library produced them.
  let last = Promise.resolve();
  return {
    name: `${user}@${server.domain}`,
    stats,
    stop: () => x.stop(),
    send(to, text) {
      stats.stanzasOut++;
      last = last.then(() => x.send(xml('message', { type: 'chat', to }, xml('body', {}, text))));
      last.catch((error) => stats.errors.push(String(error)));
    },
    onMessage(h) {
      handler = h;
    },
    flushed: () => last,
  };
}

// Clients still connected when the file ends (a test that timed out): stopped, or their
// reconnection attempts would keep the process alive.
const clients = new Set();
after(async () => {
  await Promise.all([...clients].map((x) => x.stop().catch(() => {})));
  await stopAllServers();
});

before(() => {
  if (missing) console.log(`# skipped: ${missing}`);
});

test('XMPP (prosody): AKE, SMP with a question, 1,000 messages each way, finish — 0 lost, 0 reordered', T, async () => {
  const server = await startProsody({ alice: 'alice-pw', bob: 'bob-pw' });
  const keys = await makeKeys(PROTOCOL, 'alice@localhost', 'bob@localhost');
  const endpoints = [];
  try {
    const alice = await connect(server, 'alice', 'alice-pw');
    endpoints.push(alice);
    const bob = await connect(server, 'bob', 'bob-pw');
    endpoints.push(bob);
    // XMPP carries large stanzas; a 1,000-byte limit makes the long messages multi-fragment.
    const f = await runConversation({ alice, bob, protocol: PROTOCOL, messages: 1000, keys, channelOptions: { maxMessageSize: 1000 } });
    await Promise.all([alice.flushed(), bob.flushed()]);
    for (const [who, e] of [
      ['alice', alice],
      ['bob', bob],
    ]) {
      assert.deepEqual(e.stats.errors, [], `${who}: no error`);
      assert.equal(e.stats.offline, false, `${who}: still online`);
    }
    const stanzas = alice.stats.stanzasOut + bob.stats.stanzasOut;
    assert.equal(alice.stats.messagesIn + bob.stats.messagesIn, stanzas, 'every stanza sent arrived');
    console.log(
      `# XMPP e2e: 1,000 messages each way (50 per side multi-fragment, 143 per side unicode), ${stanzas} message stanzas, AKE ${f.akeMs} ms, SMP + messages ${f.messagesMs} ms, total ${f.totalMs} ms`,
    );
  } finally {
    await Promise.all(endpoints.map((e) => e.stop().catch(() => {})));
    await server.stop();
    keys.remove();
  }
});
