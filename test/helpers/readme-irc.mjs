// The connection the README's bridge skeleton runs against (node --import this module): an
// in-process stand-in for an IRC server with one user on it, alice, who is a second
// protocol-otr instance (real libotr on both ends). It sets globalThis.irc:
//   irc.nick                  the bridge's nick
//   irc.on('privmsg', fn)     fn(nick, text) for each line alice sends
//   irc.send(line)            a raw line from the bridge; PRIVMSG alice :text reaches alice
//   irc.end()                 closes the connection; a send() after it throws, as a socket would
//
// The script it plays, each step started by the one before (no clock): once the bridge
// listens, alice asks for OTR; once private, she says hello and the process gets SIGTERM;
// the bridge's first line after that (its disconnect message, sent from within close()) makes
// her write once more at once — a line that arrives while the bridge shuts down — and when
// the connection ends it prints what alice saw:
// `[irc] alice: <status>, <n> line(s) during shutdown, <m> read by the bridge, ended`.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OTR } from 'protocol-otr';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otr-readme-irc-'));
const peer = new OTR({
  privkeysFile: path.join(dir, 'otr.private_key'),
  contactsFile: path.join(dir, 'otr.fingerprints'),
  instanceTagsFile: path.join(dir, 'otr.instance_tags'),
});
const fail = (what) => (error) => {
  console.error(`[irc] ${what}: ${error.stack ?? error}`);
  process.exitCode = 1;
};

class Irc extends EventEmitter {
  nick = 'bridge';
  #ended = false;
  #toAlice = Promise.resolve();
  #lateLines = 0;
  #lateLinesRead = 0;
  terminated = false;

  send(line) {
    if (this.#ended) throw new Error(`write after end: ${line}`);
    const privmsg = /^PRIVMSG (\S+) :(.*)$/.exec(line);
    if (privmsg?.[1] !== 'alice') return;
    if (this.terminated && this.#lateLines === 0) this.fromAlice('are you still there?', { late: true });
    this.#toAlice = this.#toAlice.then(() => alice.read(privmsg[2])).catch(fail('alice read'));
  }

  end() {
    if (this.#ended) throw new Error('ended twice');
    this.#ended = true;
    this.#toAlice
      .then(async () => {
        console.log(`[irc] alice: ${alice.status}, ${this.#lateLines} line(s) during shutdown, ${this.#lateLinesRead} read by the bridge, ended`);
        await peer.close();
        fs.rmSync(dir, { recursive: true, force: true });
      })
      .catch(fail('end'));
  }

  // Alice's line, given to whoever listens now (a socket that is no longer read delivers nothing).
  fromAlice(text, { late = false } = {}) {
    if (this.#ended) return;
    if (late) {
      this.#lateLines++;
      this.#lateLinesRead += this.listenerCount('privmsg');
    }
    this.emit('privmsg', 'alice', text);
  }
}

const irc = new Irc();
globalThis.irc = irc;

const account = await peer.account('alice', 'prpl-irc');
const alice = (await account.contact(irc.nick)).channel({
  onWrite: (_c, text) => irc.fromAlice(text),
  onRead: () => {},
  onGoneSecure: () => {
    alice
      .write('hello bridge')
      .then(() => {
        irc.terminated = true;
        process.kill(process.pid, 'SIGTERM');
      })
      .catch(fail('alice write'));
  },
});

let started = false;
irc.on('newListener', (event) => {
  if (event !== 'privmsg' || started) return;
  started = true;
  setImmediate(() => alice.init().catch(fail('alice init')));
});
