// Against a real OTR client: irssi with its OTR module (Debian irssi, irssi-plugin-otr),
// driven under tmux, on ngircd on loopback. irssi's user has no key yet. No query goes out on
// a timer and nothing sleeps: each query is sent when the previous attempt has visibly ended,
// told by irssi's own reports (a log irssi keeps of everything it prints) or by what our side
// read, and nothing is written before both sides report the session private (ours through
// onGoneSecure, irssi's "Session secured"). The attempts always go the same way:
//  1. irssi answers our query with a DH-Commit (that needs no key); at our DH-Key libotr asks
//     irssi for its key, irssi starts making it in a child process and drops the DH-Key.
//     Ended: irssi reports the key made.
//  2. irssi's libotr kept that first AKE in the instance context our DH-Key made, and answers
//     our second DH-Key from it (libotr 4.1 copies the new AKE of the master context only into
//     an instance context not itself waiting for a DH-Key): its Reveal Signature reveals the
//     first commitment, and our libotr drops it. Ended: that Reveal Signature read, our side
//     still not private.
//  3. That instance context now waits for a Signature, so the third AKE is copied into it and
//     completes. Ended: both sides report it private.
// Then messages both ways, and the end of the session as irssi reports it.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OTR } from 'protocol-otr';
import { closeAllIrc, connectIrc } from '../helpers/irc-client.mjs';
import { foreignEnv, serverMissing, startNgircd, stopAllServers } from '../helpers/servers.mjs';

// irssi-plugin-otr's module, wherever the distribution keeps irssi's modules.
function otrModule() {
  const dirs = ['/usr/lib/irssi/modules', '/usr/local/lib/irssi/modules'];
  for (const lib of ['/usr/lib', '/usr/local/lib']) {
    for (const entry of fs.existsSync(lib) ? fs.readdirSync(lib) : []) dirs.push(path.join(lib, entry, 'irssi', 'modules'));
  }
  return dirs.map((dir) => path.join(dir, 'libotr_core.so')).find((file) => fs.existsSync(file));
}
function missing() {
  const why = serverMissing('ngircd') ?? serverMissing('irssi') ?? serverMissing('tmux');
  if (why) return why;
  if (otrModule()) return undefined;
  const reason = 'irssi-plugin-otr is not installed (Debian: apt-get install irssi-plugin-otr; bash scripts/install.sh installs it)';
  if (process.env.CI === 'true') throw new Error(`${reason}: end-to-end tests never skip in CI`);
  return reason;
}
const skip = missing();
const TMUX_SOCKET = `otr-test-${process.pid}`;

// Also when a test timed out before its own cleanup: nothing may keep the process alive.
after(async () => {
  for (const [check, file] of watching) fs.unwatchFile(file, check);
  watching.clear();
  spawnSync('tmux', ['-L', TMUX_SOCKET, 'kill-server'], { env: foreignEnv() });
  closeAllIrc();
  await stopAllServers();
});

// Resolves with the first match of `pattern` in `file` (watching the file, no sleeping). A
// watch still running when the test ends (it failed or timed out) is stopped by after(): it
// would keep the process alive forever, and the test runner with it.
const watching = new Map();
function whenLogged(file, pattern) {
  return new Promise((resolve) => {
    const check = () => {
      let content = '';
      try {
        content = fs.readFileSync(file, 'utf8');
      } catch {
        /* not written yet */
      }
      const found = typeof pattern === 'string' ? content.includes(pattern) && [pattern] : pattern.exec(content);
      if (!found) return;
      fs.unwatchFile(file, check);
      watching.delete(check);
      resolve(found);
    };
    watching.set(check, file);
    fs.watchFile(file, { interval: 50 }, check);
    check();
  });
}

// The OTR message type (the byte after the protocol version) of the message a line
// completes: an unfragmented one, or the last fragment of one whose first fragment was seen.
const REVEAL_SIGNATURE = 0x11;
function completedTypes() {
  let firstPieceType;
  const typeOf = (text) => (text.startsWith('?OTR:') ? Buffer.from(text.slice(5, 9), 'base64')[2] : undefined);
  return (line) => {
    const fragment = /^\?OTR\|[0-9a-f]+\|[0-9a-f]+,(\d+),(\d+),([^,]*),$/.exec(line);
    if (!fragment) return typeOf(line);
    const [k, n] = [Number(fragment[1]), Number(fragment[2])];
    if (k === 1) firstPieceType = typeOf(fragment[3]);
    return k === n ? firstPieceType : undefined;
  };
}

// Tells irssi to quit and resolves once it has exited: irssi saves its settings and leaves,
// its pane closes with it, and the tmux server with its last pane; a tmux client waiting on a
// channel nobody signals returns exactly then (at once when the server is already gone).
function quitIrssi(tmux) {
  const waiting = spawn('tmux', ['-L', TMUX_SOCKET, 'wait-for', 'irssi-never-signals-this'], { stdio: 'ignore', env: foreignEnv() });
  const gone = new Promise((resolve) => waiting.once('close', resolve).once('error', resolve));
  waiting.once('spawn', () => tmux('send-keys', '-t', '0', '/quit', 'Enter'));
  return gone;
}

const isPrivate = (channel) => channel.status === 'Unverified' || channel.status === 'Private';

test(
  'irssi with its OTR module, no key yet: each query sent when irssi reports the last attempt ended; private on both sides before anything is written; messages both ways; irssi sees the session end',
  { timeout: 240_000, skip },
  async () => {
    const server = await startNgircd();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otr-irssi-'));
    const home = path.join(dir, 'irssi');
    // Everything irssi prints, in every window and at every level: its OTR module's reports
    // (key generation, "Session secured", the session's end) and the messages it shows.
    const irssiLog = path.join(home, 'everything.log');
    fs.mkdirSync(home, { recursive: true });
    fs.writeFileSync(
      path.join(home, 'config'),
      `servers = ( { address = "127.0.0.1"; chatnet = "test"; port = "${server.port}"; autoconnect = "yes"; } );
chatnets = { test = { type = "IRC"; }; };
channels = ( { name = "#otr"; chatnet = "test"; autojoin = "yes"; } );
settings = { core = { real_name = "carol"; user_name = "carol"; nick = "carol"; }; };
`,
    );
    fs.writeFileSync(path.join(home, 'startup'), `log open ${irssiLog} all\nload otr\n`);
    const tmux = (...args) => spawnSync('tmux', ['-L', TMUX_SOCKET, ...args], { encoding: 'utf8', env: foreignEnv() });
    const otr = new OTR({
      privkeysFile: path.join(dir, 'otr.private_key'),
      contactsFile: path.join(dir, 'otr.fingerprints'),
      instanceTagsFile: path.join(dir, 'otr.instance_tags'),
    });
    let bot;
    try {
      const account = await otr.account('bot', 'prpl-irc');
      bot = await connectIrc('bot', server.port);
      await bot.join('#otr');
      const carolJoined = new Promise((resolve) => bot.on('join', (who) => who === 'carol' && resolve()));
      const started = tmux('new-session', '-d', '-x', '200', '-y', '50', `TERM=screen irssi --home=${home}`);
      assert.equal(started.status, 0, `tmux: ${started.stderr}`);
      await Promise.all([carolJoined, whenLogged(irssiLog, 'Loaded module otr')]);

      const reads = [];
      let onRead;
      let onSecure;
      const secure = new Promise((resolve) => (onSecure = resolve));
      let onRevealSignatureDropped;
      const router = account.router({
        // No query goes out on a timer: each is sent by the loop below.
        queryRetries: 0,
        queryRetryInterval: 0x7fffffff,
        onWrite: (c, m) => bot.send(`PRIVMSG ${c.contact.name} :${m}`),
        onRead: (c, m, info) => {
          reads.push({ m, info });
          onRead?.();
        },
        onGoneSecure: () => onSecure(),
      });
      const completedType = completedTypes();
      bot.on('privmsg', (from, text) => {
        const reading = router.read(from, text);
        // A read settles after the callbacks it caused: a Reveal Signature our side accepted
        // has made it private by then.
        if (completedType(text) === REVEAL_SIGNATURE) reading.then(() => !isPrivate(carol) && onRevealSignatureDropped?.());
      });
      const carol = router.channel('carol');

      const keyMade = whenLogged(irssiLog, /OTR key generation for \S+ completed/).then(() => 'irssi made its key');
      const bothPrivate = Promise.all([secure, whenLogged(irssiLog, 'Session secured')]).then(() => 'private on both sides');
      const t0 = performance.now();
      const attempts = [];
      while (attempts.length < 4 && attempts.at(-1)?.ended !== 'private on both sides') {
        const revealSignatureDropped = new Promise((resolve) => (onRevealSignatureDropped = () => resolve("irssi's Reveal Signature dropped")));
        await carol.init();
        const ended = await Promise.race([attempts.length === 0 ? keyMade : revealSignatureDropped, bothPrivate]);
        attempts.push({ ended, seconds: ((performance.now() - t0) / 1000).toFixed(1) });
      }
      console.log(`# irssi: ${attempts.map((a) => `${a.ended} (${a.seconds} s)`).join(', ')}`);
      assert.deepEqual(
        attempts.map((a) => a.ended),
        ['irssi made its key', "irssi's Reveal Signature dropped", 'private on both sides'],
      );
      assert.equal(carol.status, 'Unverified');

      // Ours → irssi: irssi shows the decrypted text.
      await carol.write('hello irssi 🔐 from the bot');
      await whenLogged(irssiLog, 'hello irssi 🔐 from the bot');
      // irssi → ours: typed in irssi, it arrives encrypted.
      const readOne = new Promise((resolve) => (onRead = resolve));
      tmux('send-keys', '-t', '0', '/msg bot hi from irssi', 'Enter');
      await readOne;
      assert.deepEqual(
        reads.map((r) => [r.m, r.info.encrypted]),
        [['hi from irssi', true]],
      );
      // close({ endSessions }) sends the OTR disconnect message: irssi reports the session ended.
      await otr.close({ endSessions: true });
      await whenLogged(irssiLog, 'bot has finished the OTR session');
    } finally {
      // irssi writes its settings into its home as it quits: the directory goes once it is gone.
      await quitIrssi(tmux);
      await otr.close().catch(() => {});
      await bot?.quit();
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
