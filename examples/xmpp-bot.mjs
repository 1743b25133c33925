#!/usr/bin/env node
// An OTR bot on XMPP with @xmpp/client (the example's own dependency: npm install
// @xmpp/client; protocol-otr does not depend on it). Chat messages to our JID go through
// OTR, one channel per bare JID (opened on first use by the router, in arrival order), SMP
// as a promise. Driven from standard input (see bridge-console.mjs).
//
//   node examples/xmpp-bot.mjs --service xmpp://127.0.0.1:5222 --jid bot@localhost \
//        --password secret --keys ./otr-keys
//   (or XMPP_SERVICE, XMPP_JID, XMPP_PASSWORD, OTR_KEY_DIR; --plain forces SASL PLAIN, for
//   a server on loopback without TLS; --smp-secret answers SMP requests; --echo sends back
//   what it decrypts)
import { client, xml } from '@xmpp/client';
import { openBridge, options, runConsole, say } from './bridge-console.mjs';

const o = options({
  service: { env: 'XMPP_SERVICE', fallback: 'xmpp://127.0.0.1:5222' },
  jid: { env: 'XMPP_JID' },
  password: { env: 'XMPP_PASSWORD' },
  keys: { env: 'OTR_KEY_DIR', fallback: './otr-keys' },
  plain: { env: 'XMPP_PLAIN', flag: false },
  'smp-secret': { env: 'OTR_SMP_SECRET', fallback: '' },
  echo: { env: 'OTR_ECHO', flag: false },
});

const [username, domain] = o.jid.split('@');
const xmpp = client({
  service: o.service,
  domain,
  resource: 'otr-bot',
  credentials: (auth) => auth({ username, password: o.password }, o.plain ? 'PLAIN' : undefined),
});
xmpp.on('error', (error) => say(`error: ${error.message}`));

// Stanzas go out one after the other, in the order the library produced the wire text.
let last = Promise.resolve();
const bridge = await openBridge({
  keyDir: o.keys,
  account: `${username}@${domain}`,
  protocol: 'prpl-jabber',
  smpSecret: o['smp-secret'],
  echo: o.echo,
  transport: {
    send: (to, text) => {
      last = last.then(() => xmpp.send(xml('message', { type: 'chat', to }, xml('body', {}, text))));
      last.catch((error) => say(`error: ${error.message}`));
    },
    leave: async () => {
      await last.catch(() => {});
      await xmpp.stop();
    },
  },
});

xmpp.on('stanza', (stanza) => {
  if (!stanza.is('message') || stanza.attrs.type === 'error') return;
  const body = stanza.getChildText('body');
  if (body === null || !stanza.attrs.from) return;
  // One contact per bare JID: a contact's resources are OTR instances, which libotr tells apart.
  bridge.router.read(stanza.attrs.from.split('/')[0], body).catch((e) => say(`error ${e.code}: ${e.message}`));
});

await xmpp.start();
await xmpp.send(xml('presence'));
say(`connected ${o.jid}`);
runConsole(bridge);
