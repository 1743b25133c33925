// What the two bridge examples share: the OTR side of a bridge (one account, a router that
// opens a channel per contact on first use, SMP as a promise) and a console to drive it.
//
// Commands on standard input:
//   /otr NAME                 start OTR with NAME (the query is retried while unanswered)
//   /msg NAME TEXT            send TEXT (encrypted once the channel is)
//   /smp NAME SECRET [QUESTION...]   verify NAME by SMP (a one-word secret); prints the outcome
//   /finish NAME              end the private conversation with NAME
//   /quit                     end every private conversation, then leave
//   (irc-bridge.mjs adds /nick NEWNICK: our contacts' bridges follow the change)
// Output is one line per event: `secure NAME`, `read NAME encrypted|plaintext: TEXT`,
// `smp NAME verified|failed`, `finished NAME`, `query NAME secure|unanswered after N`, …
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { MessageEvent, OTR, SmpEvent } from 'protocol-otr';

/** Flags (`--name value`) over environment variables over defaults. */
export function options(spec) {
  const out = {};
  const args = process.argv.slice(2);
  for (const [key, { env, fallback, flag = true }] of Object.entries(spec)) {
    const at = args.indexOf(`--${key}`);
    if (at >= 0 && flag) out[key] = args[at + 1] ?? '';
    else if (flag === false) out[key] = args.includes(`--${key}`) || process.env[env] === '1';
    else out[key] = process.env[env] ?? fallback;
    if (out[key] === undefined) {
      console.error(`missing --${key} (or ${env})`);
      process.exit(2);
    }
  }
  return out;
}

export const say = (line) => process.stdout.write(`${line}\n`);

/**
 * Opens the key files in `keyDir` (created 0700 if needed) and the account, and returns the
 * router and the helpers the console needs. `transport.send(name, wireText)` sends one wire
 * message; `transport.leave()` is called once everything is said.
 */
export async function openBridge({ keyDir, account: accountName, protocol, transport, smpSecret, echo, channelOptions = {} }) {
  fs.mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  const otr = new OTR({
    privkeysFile: path.join(keyDir, 'otr.private_key'),
    contactsFile: path.join(keyDir, 'otr.fingerprints'),
    instanceTagsFile: path.join(keyDir, 'otr.instance_tags'),
  });
  otr.on('error', (error) => say(`error ${error.code}: ${error.message}`));
  const account = await otr.account(accountName, protocol); // generates a key the first time
  say(`fingerprint ${account.fingerprint}`);
  const smpWaiting = new Map(); // channel → { resolve }
  const router = account.router({
    ...channelOptions,
    onWrite: (c, message) => transport.send(c.contact.name, message),
    onRead: (c, message, { encrypted, verified, fingerprint }) => {
      // Who decrypted this message, not the channel's status, says whom it is from: a contact
      // with a verified key can have another session, with a key nobody verified.
      const impostor = encrypted && !verified && c.contact.fingerprints().some((fp) => fp.isVerified);
      say(`read ${c.contact.name} ${encrypted ? 'encrypted' : 'plaintext'}${impostor ? ` (NOT the verified key: ${fingerprint})` : ''}: ${message}`);
      if (echo && encrypted && !impostor) c.write(`echo: ${message}`).catch((e) => say(`error ${e.code}: ${e.message}`));
    },
    onUnverifiedInstance: (c, { fingerprint }) => say(`warning ${c.contact.name}: a session with a key nobody verified (${fingerprint})`),
    onGoneSecure: (c) => say(`secure ${c.contact.name} ${c.status}`),
    onGoneInsecure: (c) => say(`finished ${c.contact.name}`),
    onQueryResult: (c, { secure, queries }) => say(`query ${c.contact.name} ${secure ? 'secure' : 'unanswered'} after ${queries}`),
    onEvent: (c, code, text) => {
      if (code === MessageEvent.LOG_HEARTBEAT_RCVD || code === MessageEvent.LOG_HEARTBEAT_SENT) return;
      say(`event ${c.contact.name} ${MessageEvent[code] ?? code}${text ? `: ${text}` : ''}`);
    },
    // A contact asking us: answer with the configured secret, if there is one.
    onSmp: (c, question) => {
      say(`smp-request ${c.contact.name}${question ? `: ${question}` : ''}`);
      return smpSecret || undefined;
    },
    onSmpEvent: (c, code) => {
      const waiting = smpWaiting.get(c);
      if (code === SmpEvent.SUCCESS || code === SmpEvent.FAILURE || code === SmpEvent.ABORT || code === SmpEvent.CHEATED || code === SmpEvent.ERROR) {
        if (waiting) {
          smpWaiting.delete(c);
          waiting.resolve(code === SmpEvent.SUCCESS);
        } else {
          say(`smp ${c.contact.name} ${code === SmpEvent.SUCCESS ? 'answered' : 'failed'}`);
        }
      }
    },
  });

  /** SMP as a promise: true when the contact proved it knows the secret. */
  function verify(name, secret, question) {
    let channel;
    try {
      channel = router.channel(name); // throws for a bad name, or while a rename involves it
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      smpWaiting.set(channel, { resolve });
      channel.smpVerify(secret, question).catch((error) => {
        smpWaiting.delete(channel);
        reject(error);
      });
    });
  }

  let leaving;
  async function quit() {
    leaving ??= (async () => {
      // Every encrypted contact is told we are leaving; then the transport says goodbye.
      await otr.close({ endSessions: true });
      await transport.leave();
    })();
    return leaving;
  }

  return { otr, account, router, verify, quit };
}

/** Reads commands from standard input until /quit or its end; `extra` adds the transport's own. */
export function runConsole(bridge, extra = {}) {
  const input = readline.createInterface({ input: process.stdin });
  const fail = (error) => say(`error ${error.code ?? ''}: ${error.message}`);
  // router.channel() throws (a bad name, a rename on its way): a command never ends the process.
  const onChannel = (name, call) => {
    try {
      call(bridge.router.channel(name)).catch(fail);
    } catch (error) {
      fail(error);
    }
  };
  input.on('line', (line) => {
    const [command, name, ...rest] = line.trim().split(' ');
    switch (command) {
      case '/otr':
        onChannel(name, (channel) => channel.init());
        break;
      case '/msg':
        bridge.router.write(name, rest.join(' ')).catch(fail);
        break;
      case '/smp': {
        const [secret, ...question] = rest;
        bridge
          .verify(name, secret, question.length ? question.join(' ') : undefined)
          .then((ok) => say(`smp ${name} ${ok ? 'verified' : 'failed'}`), fail);
        break;
      }
      case '/finish':
        onChannel(name, (channel) => channel.finish());
        break;
      case '/quit':
        input.close();
        break;
      default:
        if (extra[command]) {
          try {
            extra[command](name, ...rest);
          } catch (error) {
            fail(error);
          }
        }
        else if (line.trim()) say(`error: unknown command ${command}`);
    }
  });
  input.on('close', () => bridge.quit().then(() => process.exit(0), fail));
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => input.close());
}
