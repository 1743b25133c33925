#!/usr/bin/env node
// An OTR bot on XMPP with @xmpp/client 0.14 (the example's own dependency: npm install
// @xmpp/client; protocol-otr does not depend on it). Chat messages to our JID go through OTR,
// one channel per bare JID (opened on first use by the router, in arrival order), SMP as a
// promise. Driven from standard input (bridge-console.mjs); `--help` lists options and commands.
//
// Login: TLS is required (STARTTLS on xmpp://, direct TLS on xmpps://) unless
// --allow-unencrypted says otherwise, and the password goes by the first SASL mechanism the
// server offers that @xmpp/client speaks (SCRAM-SHA-1, then PLAIN; never PLAIN without TLS
// unless --plain asks for it). A failed connection or login is one line and exit code 1.
import fs from 'node:fs';
import tls from 'node:tls';
import { client, xml } from '@xmpp/client';
import { consoleHelp, defaultKeyDir, openBridge, options, runConsole, say } from './bridge-console.mjs';

const KEYS = defaultKeyDir('xmpp-bot');
const HELP = `Usage: node examples/xmpp-bot.mjs --jid USER@DOMAIN --password PASSWORD [options]

An OTR bot on XMPP: chat messages to the JID go through OTR, one conversation per bare JID.

Options (each also from the environment variable shown):
  --jid USER@DOMAIN     our account, and the name of our OTR account (XMPP_JID; required)
  --password PASSWORD   its password (XMPP_PASSWORD, which other users cannot see; required)
  --service URL         xmpp://HOST:PORT (STARTTLS) or xmpps://HOST:PORT (direct TLS)
                        (XMPP_SERVICE; default xmpp://DOMAIN:5222)
  --ca FILE             also trust the certificate(s) in FILE (PEM): a server with a
                        self-signed certificate (XMPP_CA)
  --allow-unencrypted   log in without TLS if the server offers none: a test server on
                        loopback (XMPP_ALLOW_UNENCRYPTED=1). SCRAM-SHA-1 is still used
                        when offered
  --plain               log in with SASL PLAIN (the password itself; over no TLS, in the
                        clear): a quick login to a test server on loopback (XMPP_PLAIN=1)
  --keys DIR            private key, fingerprints and instance tags, generated on the first
                        start (OTR_KEY_DIR; default ${KEYS})
  --smp-secret SECRET   answer SMP requests with SECRET (OTR_SMP_SECRET); without it the
                        console answers them (/smp-answer)
  --echo                send back what it decrypts (OTR_ECHO=1)
  --help                this text

Login: TLS is required unless --allow-unencrypted; the first SASL mechanism the server offers
that @xmpp/client speaks is used (SCRAM-SHA-1, then PLAIN over TLS). A failed connection or
login prints one line and exits with code 1; a connection lost later is retried.

${consoleHelp()}`;

const o = options(
  {
    jid: { env: 'XMPP_JID' },
    password: { env: 'XMPP_PASSWORD' },
    service: { env: 'XMPP_SERVICE', fallback: '' },
    ca: { env: 'XMPP_CA', fallback: '' },
    'allow-unencrypted': { env: 'XMPP_ALLOW_UNENCRYPTED', flag: false },
    plain: { env: 'XMPP_PLAIN', flag: false },
    keys: { env: 'OTR_KEY_DIR', fallback: KEYS },
    'smp-secret': { env: 'OTR_SMP_SECRET', fallback: '' },
    echo: { env: 'OTR_ECHO', flag: false },
  },
  HELP,
);

const [username, domain] = o.jid.split('@');
if (!username || !domain || o.jid.includes('/')) {
  process.stderr.write(`error: --jid ${o.jid} is not a bare JID (USER@DOMAIN)\n`);
  process.exit(2);
}
const service = o.service || `xmpp://${domain}:5222`;

if (o.ca) {
  let extra;
  try {
    extra = fs.readFileSync(o.ca, 'utf8');
  } catch (error) {
    process.stderr.write(`error: --ca ${o.ca}: ${error.message}\n`);
    process.exit(2);
  }
  // @xmpp/client 0.14 hands no TLS options of ours to node:tls (STARTTLS and xmpps:// alike),
  // so the certificate joins the trusted ones for every TLS connection of this process.
  const ca = [...tls.rootCertificates, extra];
  const connect = tls.connect;
  tls.connect = (options, ...rest) => connect({ ca, ...options }, ...rest);
}

class LoginRefused extends Error {}

// The server's mechanisms that @xmpp/client speaks arrive in its order of preference.
function chooseMechanism(offered, secure) {
  if (!secure && !o['allow-unencrypted']) {
    throw new LoginRefused(`${service} offers no TLS: the password would cross unencrypted (--allow-unencrypted allows it, for a test server on loopback)`);
  }
  const usable = offered.filter((m) => m !== 'ANONYMOUS' && (m !== 'PLAIN' || secure || o.plain));
  const mechanism = o.plain ? usable.find((m) => m === 'PLAIN') : usable[0];
  if (!mechanism) {
    throw new LoginRefused(
      `no SASL mechanism to use: the server offers ${offered.join(', ') || 'none'}${offered.includes('PLAIN') && !o.plain ? ' (PLAIN without TLS only with --plain)' : ''}`,
    );
  }
  return mechanism;
}

// One line for any failure: the server's condition rather than its XML, no stack trace.
function describe(error) {
  if (error.condition) return `${error.condition}${error.text ? ` (${error.text})` : ''}`;
  const hint = /certificate/i.test(error.message) ? " (--ca FILE trusts a server's own certificate)" : '';
  return `${error.message}${hint}`.replace(/\s+/g, ' ');
}

const xmpp = client({
  service,
  domain,
  resource: 'otr-bot',
  credentials: (authenticate, offered, _fast, entity) => authenticate({ username, password: o.password }, chooseMechanism(offered, entity.isSecure())),
});
let online = false;
// Before the first login, start() reports the failure; after it, each error is a line.
xmpp.on('error', (error) => online && say(`error: ${describe(error)}`));
xmpp.on('offline', () => (online = false));
xmpp.on('online', () => {
  online = true;
  xmpp.send(xml('presence')).catch(() => {});
  say(`connected ${o.jid}`);
});
xmpp.on('disconnect', () => online && say('disconnected: reconnecting'));

// Stanzas go out one after the other, in the order the library produced the wire text.
let last = Promise.resolve();
const bridge = await openBridge({
  keyDir: o.keys,
  account: o.jid,
  protocol: 'prpl-jabber',
  smpSecret: o['smp-secret'],
  echo: o.echo,
  // What a client without OTR shows of our query: plain text (libotr's own is HTML).
  channelOptions: {
    queryText: `${o.jid} asks for an encrypted (Off-the-Record) conversation, which your client does not support: see https://otr.cypherpunks.ca/`,
  },
  transport: {
    send: (to, text) => {
      last = last.then(() => xmpp.send(xml('message', { type: 'chat', to }, xml('body', {}, text))));
      last.catch((error) => say(`error: not sent to ${to}: ${describe(error)}`));
    },
    leave: async () => {
      await last.catch(() => {});
      await xmpp.stop().catch(() => {});
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

try {
  await xmpp.start();
} catch (error) {
  say(`error: cannot ${error instanceof LoginRefused || error.name === 'SASLError' ? 'log in' : 'connect'} as ${o.jid} at ${service}: ${describe(error)}`);
  await xmpp.stop().catch(() => {});
  await bridge.otr.close();
  process.exit(1);
}
runConsole(bridge);
