// examples/irc-bridge.mjs against a real OTR client: irssi with its OTR module (Debian irssi,
// irssi-plugin-otr), driven under tmux, on ngircd on loopback. irssi-otr keeps sessions by
// nick: when the bridge changes its own nick, the conversation must end under the old nick
// and start again under the new one, or irssi's user would write to the new nick in clear.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { killExamples, removeTempDirs, runExample, tempDir } from '../helpers/examples.mjs';
import { waitSteps } from '../helpers/steps.mjs';
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
const TMUX_SOCKET = `otr-bridge-test-${process.pid}`;
const tmux = (...args) => spawnSync('tmux', ['-L', TMUX_SOCKET, ...args], { encoding: 'utf8', env: foreignEnv() });

const watching = new Set();
after(async () => {
  for (const file of watching) fs.unwatchFile(file);
  watching.clear();
  tmux('kill-server');
  killExamples();
  await stopAllServers();
  removeTempDirs();
});

// Resolves when `file` holds a line matching `pattern` (watching the file, no sleeping).
function fileMatches(file, pattern) {
  return new Promise((resolve) => {
    const check = () => {
      let content = '';
      try {
        content = fs.readFileSync(file, 'utf8');
      } catch {
        /* not written yet */
      }
      if (!pattern.test(content)) return;
      fs.unwatchFile(file, check);
      watching.delete(file);
      resolve(content);
    };
    watching.add(file);
    fs.watchFile(file, { interval: 50 }, check);
    check();
  });
}

test(
  "irssi-otr and the IRC example's own nick change: the conversation ends under the old nick, starts again under the new one, and irssi's reply arrives encrypted",
  { timeout: 240_000, skip },
  async (t) => {
    let bridge;
    let home;
    // Should a wait below never end: what the example printed, and what irssi logged.
    const { at, passed } = waitSteps(t, 'ngircd', () => {
      const logs = home && fs.existsSync(path.join(home, 'logs')) ? fs.readdirSync(path.join(home, 'logs')) : [];
      return [
        `the example printed:\n${bridge?.lines.join('\n')}\n${bridge?.stderr ?? ''}`,
        ...logs.map((log) => `irssi's ${log}:\n${fs.readFileSync(path.join(home, 'logs', log), 'utf8')}`),
      ].join('\n');
    });
    const server = await startNgircd();
    home = path.join(tempDir('otr-irssi-'), 'irssi');
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
    bridge = runExample('irc-bridge.mjs', [
      '--host',
      '127.0.0.1',
      '--port',
      String(server.port),
      '--nick',
      'otrbot',
      '--join',
      '#otr',
      '--keys',
      tempDir(),
      '--rate',
      '20',
      '--burst',
      '10',
    ]);
    const type = (line) => tmux('send-keys', '-t', '0', line, 'Enter');
    try {
      await at('the example in #otr', bridge.waitFor(/^joined #otr$/));
      const started = tmux('new-session', '-d', '-x', '200', '-y', '50', `TERM=screen irssi --home=${home}`);
      assert.equal(started.status, 0, `tmux: ${started.stderr}`);
      // irssi's first /otr init generates its key; the next one starts the AKE.
      await at('irssi in #otr', fileMatches(path.join(home, 'logs', '#otr.log'), /carol/));
      type('/query otrbot');
      type('/otr init');
      await at("irssi's key", fileMatches(path.join(home, 'otr', 'otr.key'), /private-key/));
      type('/otr init');
      await at('the first session', bridge.waitFor(/^secure carol Unverified$/));
      type('/msg otrbot before 🔐');
      await at('the first message', bridge.waitFor(/^read carol encrypted: before 🔐$/));

      const mark = bridge.lines.length;
      bridge.send('/nick otrbot2');
      await at('the nick change', fileMatches(path.join(home, 'logs', '#otr.log'), /otrbot is now known as otrbot2/));
      // irssi saw the conversation with otrbot end, then went private with otrbot2.
      await at("irssi's end of the old session", fileMatches(path.join(home, 'logs', 'otrbot.log'), /otrbot has finished the OTR session/));
      await at('the session under the new nick', bridge.waitFor(/^secure carol Unverified$/, mark));
      await at("irssi's new session", fileMatches(path.join(home, 'logs', 'otrbot2.log'), /Session secured/));
      type('/msg otrbot2 after the nick change');
      await at('the message after the nick change', bridge.waitFor(/^read carol (encrypted|plaintext): after the nick change$/, mark));
      assert.ok(bridge.lines.includes('read carol encrypted: after the nick change'), bridge.lines.slice(mark).join('\n'));
      bridge.send('/quit');
      assert.equal(await bridge.exited, 0);
      passed();
    } finally {
      bridge.kill();
      tmux('kill-server');
      await server.stop();
    }
  },
);
