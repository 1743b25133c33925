#!/usr/bin/env node
// An OTR bridge on IRC over a raw socket: private messages to our nick go through OTR, one
// channel per nick (opened on first use by the router, in arrival order), every outgoing
// line paced so the server's flood limit is never hit, users' nick changes followed, SMP as a
// promise. Driven from standard input (bridge-console.mjs); `--help` lists options and commands.
//
// Nicks, ours and theirs:
// - At registration a nick in use is replaced by NICK_, then NICK__ (a line says so); at run
//   time a /nick onto a nick in use (or refused) changes nothing: the old nick stays.
// - Our own /nick while conversations are encrypted: OTR clients keep sessions by nick
//   (irssi-otr does), so a session would dangle under the old nick and the user's replies to
//   the new one would go out in plaintext. The bridge ends each encrypted conversation first
//   (the users' clients show it ended), changes the nick, then queries each of them again from
//   the new nick; the console's writes to them are refused until they are secure again. The
//   OTR account keeps the nick the bridge started with (it names the key, not the nick).
// - A user's nick change is followed with router.rename(). When the new nick belongs to
//   another contact with something to lose (a verified key, an encrypted session), the router
//   refuses (ERR_OTR_CONTACT_EXISTS): the user's conversation stays under the old name, their
//   messages from the new nick keep going to it (and ours to them to the new nick), and the
//   operator is told; `/forget NEWNICK` drops the other contact and moves them to NEWNICK.
import net from 'node:net';
import { Pacer } from 'protocol-otr';
import { consoleHelp, defaultKeyDir, openBridge, options, runConsole, say } from './bridge-console.mjs';

const KEYS = defaultKeyDir('irc-bridge');
const HELP = `Usage: node examples/irc-bridge.mjs --nick NICK [options]

An OTR bridge on IRC: private messages to NICK go through OTR, one conversation per nick.

Options (each also from the environment variable shown):
  --nick NICK          our nick, and the name of our OTR account (IRC_NICK; required)
  --host HOST          IRC server (IRC_HOST; default 127.0.0.1)
  --port PORT          its port, plain TCP (IRC_PORT; default 6667)
  --join '#CHANNEL'    sit in a channel: IRC tells us of users' nick changes only there
                       (IRC_JOIN)
  --keys DIR           private key, fingerprints and instance tags, generated on the first
                       start (OTR_KEY_DIR; default ${KEYS})
  --rate N, --burst N  lines per second, and how many may go at once, to the server
                       (IRC_LINES_PER_SECOND, IRC_BURST; default 2 and 3: ngircd's flood limit)
  --smp-secret SECRET  answer SMP requests with SECRET (OTR_SMP_SECRET); without it the
                       console answers them (/smp-answer)
  --echo               send back what it decrypts (OTR_ECHO=1)
  --help               this text

${consoleHelp(`  /nick NEWNICK                change our nick: encrypted conversations end first and are
                               queried again from NEWNICK; a NEWNICK in use changes nothing
  /forget NAME                 also: a user whose nick change onto NAME was refused (NAME
                               was another contact's) takes the name NAME`)}
Nicks: at registration a nick in use becomes NICK_, then NICK__. Users' nick changes are
followed (their conversation, trust and sessions move to the new nick) when we share a
channel with them (--join). A user's change onto the nick of another contact with a verified
key or an encrypted session is refused and reported: their conversation goes on under the
old name until /forget NEWNICK.
`;

const o = options(
  {
    host: { env: 'IRC_HOST', fallback: '127.0.0.1' },
    port: { env: 'IRC_PORT', fallback: '6667' },
    nick: { env: 'IRC_NICK' },
    keys: { env: 'OTR_KEY_DIR', fallback: KEYS },
    join: { env: 'IRC_JOIN', fallback: '' },
    rate: { env: 'IRC_LINES_PER_SECOND', fallback: '2' },
    burst: { env: 'IRC_BURST', fallback: '3' },
    'smp-secret': { env: 'OTR_SMP_SECRET', fallback: '' },
    echo: { env: 'OTR_ECHO', flag: false },
  },
  HELP,
);

let socket; // connected once the key is ready (the first start generates it)
const raw = (line) => socket.write(Buffer.from(`${line}\r\n`, 'utf8'));
// Every line of the connection goes through one pacer (ngircd lets about 2 lines/s through
// once a short burst is spent), except PONG, which must not wait behind a backlog. Each
// contact's lines are pushed for that contact, so the contacts take turns and one contact's
// flood cannot hold the others' lines behind it; JOIN and NICK take turns as one more lane.
// A full queue drops lines (a contact flooding us), reported here.
const pacer = new Pacer({ linesPerSecond: Number(o.rate), burst: Number(o.burst), send: raw });
pacer.on('drop', ({ target, dropped }) => say(`dropped ${dropped} lines to ${target ?? 'the server'}: the queue is full`));
let nick = o.nick;
let leaving = false;

// Users whose nick change the router refused: their contact keeps the old name.
const contactOfNick = new Map(); // nick → contact name
const nickOfContact = new Map(); // contact name → nick
const contactName = (userNick) => contactOfNick.get(userNick) ?? userNick;
const wireNick = (name) => nickOfContact.get(name) ?? name;
function unalias(userNick) {
  const name = contactOfNick.get(userNick);
  if (name === undefined) return;
  contactOfNick.delete(userNick);
  nickOfContact.delete(name);
}
// A rename on its way: what the user says under the new nick waits for it, so it reaches the
// contact the rename settles on.
const settling = new Map(); // new nick → promise
function asUser(userNick, handle) {
  const pending = settling.get(userNick);
  if (pending) pending.then(() => handle(contactName(userNick)));
  else handle(contactName(userNick));
}
const report = (e) => say(`error${e.code ? ` ${e.code}` : ''}: ${e.message}`);

const bridge = await openBridge({
  keyDir: o.keys,
  account: o.nick, // our OTR identity stays the nick we started with
  protocol: 'prpl-irc', // line-based: no wire text contains a line break, fragments fit a line
  smpSecret: o['smp-secret'],
  echo: o.echo,
  transport: {
    send: (to, text) => pacer.push(`PRIVMSG ${wireNick(to)} :${text}`, to),
    leave: async () => {
      leaving = true;
      await pacer.drained();
      await new Promise((resolve) => {
        socket.once('close', resolve);
        socket.end('QUIT :bye\r\n');
      });
    },
  },
});

// Moves the user's contact `name` to `to`. Refused (`to` is another contact with something
// to lose): the user keeps `name`, reached under the nick `to`.
function renameUser(name, to) {
  const done = bridge.router.rename(name, to).then(
    () => {
      if (name !== to) say(`renamed ${name} ${to}`);
    },
    (error) => {
      if (error.code !== 'ERR_OTR_CONTACT_EXISTS') return report(error);
      contactOfNick.set(to, name);
      nickOfContact.set(name, to);
      say(
        `error ERR_OTR_CONTACT_EXISTS: ${name} is now ${to}, but ${to} is another contact (a verified key or an encrypted ` +
          `session): ${name}'s conversation goes on under the name ${name}; /forget ${to} drops that contact and moves ${name} to ${to}`,
      );
    },
  );
  const settled = done.finally(() => settling.get(to) === settled && settling.delete(to));
  settling.set(to, settled);
  return settled;
}

// Our own nick change: see the header. `resume` are the channels ended for it.
let nickChange; // { to, resume }
async function changeNick(to) {
  if (nickChange) throw new Error(`a nick change to ${nickChange.to} is on its way`);
  if (/[\s,:]/.test(to)) throw new Error(`${to} is not a nick`);
  const encrypted = bridge.router.channels().filter((c) => c.status === 'Unverified' || c.status === 'Private');
  nickChange = { to, resume: encrypted };
  for (const c of encrypted) bridge.hold(c.contact.name, `OTR restarts after our nick change; send again after "secure ${c.contact.name}"`);
  if (encrypted.length) say(`nick change: ending the private conversations with ${encrypted.map((c) => c.contact.name).join(' ')} first`);
  try {
    await Promise.all(encrypted.map((c) => c.finish()));
    await pacer.drained(); // their ends go out under the nick they know
  } catch (error) {
    nickChangeSettled();
    throw error;
  }
  pacer.push(`NICK ${to}`);
}
function nickChangeSettled() {
  const { resume } = nickChange;
  nickChange = undefined;
  // Queried again from the nick we have now (the new one, or the old one if it was refused).
  for (const c of resume) c.init().catch(report);
}

// One IRC line: [:prefix] COMMAND params [:trailing]
function parse(line) {
  const m = /^(?::(\S+) +)?(\S+) *(.*)$/.exec(line);
  if (!m) return undefined;
  const params = [];
  let rest = m[3];
  while (rest) {
    if (rest.startsWith(':')) {
      params.push(rest.slice(1));
      break;
    }
    const [, word, after] = /^(\S+) *(.*)$/.exec(rest);
    params.push(word);
    rest = after;
  }
  return { from: (m[1] ?? '').split('!')[0], command: m[2], params };
}

socket = net.connect(Number(o.port), o.host);
let buffer = Buffer.alloc(0);
let registered = false;
let onRegistered;
const ready = new Promise((resolve) => (onRegistered = resolve));
let alternatives = 0; // nicks tried at registration after the one given
socket.on('data', (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  let at;
  while ((at = buffer.indexOf('\r\n')) >= 0) {
    const line = buffer.subarray(0, at).toString('utf8');
    buffer = buffer.subarray(at + 2);
    if (line.startsWith('PING')) {
      raw(`PONG${line.slice(4)}`);
      continue;
    }
    const message = parse(line);
    if (message) onLine(message);
  }
});

function onLine({ from, command, params }) {
  switch (command) {
    case '001':
      registered = true;
      nick = params[0] ?? nick;
      onRegistered();
      break;
    case '432': // erroneous nick
    case '433': // in use
    case '436': // collision
    case '437': {
      // temporarily unavailable
      const [, wanted, text] = params;
      const why = command === '433' ? 'is in use' : `is refused: ${text ?? command}`;
      if (registered) {
        if (!nickChange) return say(`error: nick ${wanted} ${why}`);
        say(`error: nick ${wanted} ${why}: still ${nick}`);
        nickChangeSettled();
      } else if (command === '433' && alternatives < 2) {
        nick = `${o.nick}${'_'.repeat(++alternatives)}`;
        say(`nick ${wanted} is in use: trying ${nick}`);
        raw(`NICK ${nick}`);
      } else {
        fatal(`error: nick ${wanted} ${why}`);
      }
      break;
    }
    case 'PRIVMSG':
      // Private messages only; the router keeps their order, whatever the nick.
      if (params[0] === nick) asUser(from, (name) => bridge.router.read(name, params[1] ?? '').catch(report));
      break;
    case 'NICK': {
      const to = params[0];
      if (from !== nick) {
        return asUser(from, (name) => {
          unalias(from);
          unalias(to); // whoever had it is gone: the server gave the nick away
          renameUser(name, to);
        });
      }
      nick = to;
      say(`nick ${to}`);
      if (nickChange) nickChangeSettled();
      break;
    }
    case 'QUIT':
      unalias(from);
      break;
    case 'JOIN':
      if (from === nick) say(`joined ${params[0]}`);
      break;
    case 'ERROR':
      if (!leaving) say(`error: the server closed the connection: ${params[0] ?? ''}`);
      break;
    default:
      break;
  }
}

// The end of the connection we did not ask for ends the bridge (exit code 1).
let ending = false;
function fatal(line) {
  if (ending) return;
  ending = true;
  say(line);
  socket.destroy();
  bridge.otr.close().finally(() => process.exit(1));
}
socket.on('error', (error) => fatal(`error: ${o.host}:${o.port}: ${error.message}`));
socket.on('close', () => {
  if (!leaving) fatal(registered ? 'disconnected' : 'error: the server closed the connection before registration');
});
socket.on('connect', () => {
  raw(`NICK ${nick}`);
  raw(`USER ${o.nick} 0 * :protocol-otr bridge`);
});

await ready;
if (o.join) pacer.push(`JOIN ${o.join}`);
say(`connected ${nick}`);
runConsole(bridge, {
  '/nick': { args: ['NEWNICK'], run: changeNick },
  '/forget': {
    args: ['NAME'],
    // A user refused the name (see renameUser) takes it once its contact is gone.
    run: async (name) => {
      const renamed = contactOfNick.get(name);
      await bridge.forget(name);
      say(`forgot ${name}`);
      if (renamed === undefined || contactOfNick.get(name) !== renamed) return;
      unalias(name);
      await renameUser(renamed, name);
    },
  },
});
