// Against a real OTR client: irssi with its OTR module (Debian irssi, irssi-plugin-otr),
// driven under tmux, on ngircd on loopback. irssi's user has no key yet: irssi generates one
// when our first query arrives and answers the next with a stale AKE message, so OTR only
// starts on a later query — which init()'s retries send by themselves. Then messages both
// ways, checked in irssi's own log and in our onRead.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OTR } from 'protocol-otr';
import { closeAllIrc, connectIrc } from '../helpers/irc-client.mjs';
import { foreignEnv, serverMissing, startNgircd, stopAllServers } from '../helpers/servers.mjs';

const IRSSI_OTR_MODULE = '/usr/lib/x86_64-linux-gnu/irssi/modules/libotr_core.so';
function missing() {
  const why = serverMissing('ngircd') ?? serverMissing('irssi') ?? serverMissing('tmux');
  if (why) return why;
  if (fs.existsSync(IRSSI_OTR_MODULE)) return undefined;
  const reason = 'irssi-plugin-otr is not installed (Debian: apt-get install irssi-plugin-otr)';
  if (process.env.CI === 'true') throw new Error(`${reason}: end-to-end tests never skip in CI`);
  return reason;
}
const skip = missing();
const TMUX_SOCKET = `otr-test-${process.pid}`;

// Also when a test timed out before its own cleanup: nothing may keep the process alive.
after(async () => {
  for (const file of watching) fs.unwatchFile(file);
  watching.clear();
  spawnSync('tmux', ['-L', TMUX_SOCKET, 'kill-server'], { env: foreignEnv() });
  closeAllIrc();
  await stopAllServers();
});

// Resolves when `file` contains `text` (watching the file, no sleeping). A watch still running
// when the test ends (it failed or timed out) is stopped by after(): it would keep the process
// alive forever, and the test runner with it.
const watching = new Set();
function fileContains(file, text) {
  return new Promise((resolve) => {
    const check = () => {
      let content = '';
      try {
        content = fs.readFileSync(file, 'utf8');
      } catch {
        /* not written yet */
      }
      if (!content.includes(text)) return;
      fs.unwatchFile(file, check);
      watching.delete(file);
      resolve(content);
    };
    watching.add(file);
    fs.watchFile(file, { interval: 50 }, check);
    check();
  });
}

test('irssi with its OTR module: our retried query starts OTR with a client that has no key yet; messages both ways', { timeout: 240_000, skip }, async () => {
  const server = await startNgircd();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otr-irssi-'));
  const home = path.join(dir, 'irssi');
  fs.mkdirSync(path.join(home, 'logs'), { recursive: true });
  fs.writeFileSync(
    path.join(home, 'config'),
    `servers = ( { address = "127.0.0.1"; chatnet = "test"; port = "${server.port}"; autoconnect = "yes"; } );
chatnets = { test = { type = "IRC"; }; };
channels = ( { name = "#otr"; chatnet = "test"; autojoin = "yes"; } );
settings = {
  core = { real_name = "carol"; user_name = "carol"; nick = "carol"; };
  "fe-common/core" = { autolog = "yes"; autolog_path = "${home}/logs/$0.log"; autolog_level = "all"; };
};
`,
  );
  fs.writeFileSync(path.join(home, 'startup'), 'load otr\n');
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
    await carolJoined;

    const reads = [];
    let outcome;
    let onOutcome;
    const outcomeKnown = new Promise((resolve) => (onOutcome = resolve));
    let onRead;
    const router = account.router({
      queryRetryInterval: 5000,
      queryRetries: 6,
      onWrite: (c, m) => bot.send(`PRIVMSG ${c.contact.name} :${m}`),
      onRead: (c, m, info) => {
        reads.push({ m, info });
        onRead?.();
      },
      onQueryResult: (c, result) => {
        outcome = result;
        onOutcome();
      },
    });
    bot.on('privmsg', (from, text) => router.read(from, text));
    const carol = router.channel('carol');
    const t0 = performance.now();
    await carol.init();
    await outcomeKnown;
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(`# irssi: OTR private after ${outcome.queries} queries, ${seconds} s (irssi generated its key on the first)`);
    assert.equal(outcome.secure, true, `OTR with irssi: ${JSON.stringify(outcome)}`);
    assert.equal(carol.status, 'Unverified');

    // Ours → irssi: irssi's log shows the decrypted text.
    await carol.write('hello irssi 🔐 from the bot');
    await fileContains(path.join(home, 'logs', 'bot.log'), 'hello irssi 🔐 from the bot');
    // irssi → ours: typed in irssi, it arrives encrypted.
    const readOne = new Promise((resolve) => (onRead = resolve));
    tmux('send-keys', '-t', '0', '/msg bot hi from irssi', 'Enter');
    await readOne;
    assert.deepEqual(reads.map((r) => [r.m, r.info.encrypted]), [['hi from irssi', true]]);
    await otr.close({ endSessions: true });
  } finally {
    tmux('kill-server');
    await otr.close().catch(() => {});
    await bot?.quit();
    await server.stop();
    // irssi may still be saving its files as it exits after the tmux server went away.
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 50 });
  }
});
