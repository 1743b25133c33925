#!/usr/bin/env node
// An OTR bridge on IRC over a raw socket: private messages to our nick go through OTR,
// one channel per nick (opened on first use by the router, in arrival order), every
// outgoing line paced so the server's flood limit is never hit, nick changes followed,
// SMP as a promise. Driven from standard input (see bridge-console.mjs).
//
//   node examples/irc-bridge.mjs --host 127.0.0.1 --port 6667 --nick otrbot --keys ./otr-keys
//   (or IRC_HOST, IRC_PORT, IRC_NICK, OTR_KEY_DIR; --join '#chan' / IRC_JOIN to sit in a
//   channel, which is how IRC tells us of nick changes; --rate and --burst pace the lines;
//   --smp-secret answers SMP requests; --echo sends back what it decrypts)
import net from 'node:net';
import { Pacer } from 'protocol-otr';
import { openBridge, options, runConsole, say } from './bridge-console.mjs';

const o = options({
  host: { env: 'IRC_HOST', fallback: '127.0.0.1' },
  port: { env: 'IRC_PORT', fallback: '6667' },
  nick: { env: 'IRC_NICK' },
  keys: { env: 'OTR_KEY_DIR', fallback: './otr-keys' },
  join: { env: 'IRC_JOIN', fallback: '' },
  rate: { env: 'IRC_LINES_PER_SECOND', fallback: '2' },
  burst: { env: 'IRC_BURST', fallback: '3' },
  'smp-secret': { env: 'OTR_SMP_SECRET', fallback: '' },
  echo: { env: 'OTR_ECHO', flag: false },
});

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

const bridge = await openBridge({
  keyDir: o.keys,
  account: o.nick, // our OTR identity stays the nick we started with
  protocol: 'prpl-irc', // line-based: no wire text contains a line break, fragments fit a line
  smpSecret: o['smp-secret'],
  echo: o.echo,
  transport: {
    send: (to, text) => pacer.push(`PRIVMSG ${to} :${text}`, to),
    leave: async () => {
      await pacer.drained();
      await new Promise((resolve) => {
        socket.once('close', resolve);
        socket.end('QUIT :bye\r\n');
      });
    },
  },
});

socket = net.connect(Number(o.port), o.host);
let buffer = Buffer.alloc(0);
let registered;
const ready = new Promise((resolve) => (registered = resolve));
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
    const m = line.match(/^:(\S+) (\S+) (\S+)(?: :?(.*))?$/);
    if (!m) continue;
    const from = m[1].split('!')[0];
    switch (m[2]) {
      case '001':
        registered();
        break;
      case '433':
        say(`error: nick ${nick} is in use`);
        process.exit(1);
        break;
      case 'PRIVMSG':
        // Private messages only; the router keeps their order, whatever the nick.
        if (m[3] === nick) bridge.router.read(from, m[4] ?? '').catch((e) => say(`error ${e.code}: ${e.message}`));
        break;
      case 'NICK': {
        const to = m[3].replace(/^:/, '');
        if (from === nick) nick = to;
        else bridge.router.rename(from, to).then(() => say(`renamed ${from} ${to}`), (e) => say(`error ${e.code}: ${e.message}`));
        break;
      }
      case 'JOIN':
        if (from === nick) say(`joined ${m[3].replace(/^:/, '')}`);
        break;
      default:
        break;
    }
  }
});
socket.on('error', (error) => {
  say(`error: ${error.message}`);
  process.exit(1);
});
socket.on('close', () => say('disconnected'));
socket.on('connect', () => {
  raw(`NICK ${nick}`);
  raw(`USER ${nick} 0 * :protocol-otr bridge`);
});

await ready;
if (o.join) pacer.push(`JOIN ${o.join}`);
say(`connected ${nick}`);
// Our own nick change: our OTR account keeps its name; the other side follows with rename().
runConsole(bridge, { '/nick': (newNick) => pacer.push(`NICK ${newNick}`) });
