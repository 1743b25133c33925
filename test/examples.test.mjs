// The shipped examples, run as their --help says, against real servers on loopback: two
// instances of each bridge talk through the server — OTR started with a retried query,
// messages both ways, SMP as a promise, a nick change on each side (IRC), and /quit telling
// the other side the session ended. And what every example does before anything else:
// --help, whatever else is given, and keys kept outside the checkout by default.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { killExamples, removeTempDirs, runExample, tempDir } from './helpers/examples.mjs';
import { serverMissing, startNgircd, startProsody, stopAllServers } from './helpers/servers.mjs';

const ircMissing = serverMissing('ngircd');
const xmppMissing = serverMissing('prosody');

after(async () => {
  killExamples();
  await stopAllServers();
  removeTempDirs();
});

test(
  'every example has --help: with other options given too it prints its usage and exits 0, generating no key and connecting nowhere',
  { timeout: 60_000 },
  async () => {
    // A server where the examples would connect: it must see no connection.
    const connections = [];
    const server = net.createServer((socket) => {
      connections.push(socket);
      socket.destroy();
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address();
    try {
      const runs = {
        'irc-bridge.mjs': ['--nick', 'x', '--port', String(port), '--help'],
        'xmpp-bot.mjs': ['--jid', 'x@localhost', '--password', 'pw', '--service', `xmpp://127.0.0.1:${port}`, '--help'],
        'demo.mjs': ['--help'],
      };
      for (const [script, args] of Object.entries(runs)) {
        const home = tempDir();
        const cwd = tempDir();
        const run = runExample(script, args, { cwd, env: { HOME: home, XDG_DATA_HOME: path.join(home, 'data'), OTR_KEY_DIR: undefined } });
        const code = await run.exited;
        assert.equal(code, 0, `${script}: ${run.stderr}`);
        assert.match(run.lines[0], new RegExp(`^Usage: node examples/${script.replace('.', '\\.')}`), script);
        assert.deepEqual([fs.readdirSync(home), fs.readdirSync(cwd)], [[], []], `${script}: no file written`);
        assert.ok(!run.lines.some((l) => /^fingerprint /.test(l)), `${script}: no key`);
      }
      assert.equal(connections.length, 0, 'no connection');
    } finally {
      server.close();
    }
  },
);

test('examples: a misspelled option is refused with exit 2, naming it', async () => {
  const run = runExample('irc-bridge.mjs', ['--nik', 'x'], { cwd: tempDir(), env: { XDG_DATA_HOME: tempDir() } });
  assert.equal(await run.exited, 2);
  assert.equal(run.stderr, 'error: unknown option --nik; --help lists the options\n');
});

test(
  'irc-bridge keeps its keys outside the checkout by default: $XDG_DATA_HOME/protocol-otr/irc-bridge, else ~/.local/share/protocol-otr/irc-bridge',
  { timeout: 120_000, skip: ircMissing },
  async () => {
    const server = await startNgircd();
    try {
      for (const env of [{ XDG_DATA_HOME: path.join(tempDir(), 'data') }, { HOME: tempDir(), XDG_DATA_HOME: undefined }]) {
        const cwd = tempDir();
        const expected = path.join(env.XDG_DATA_HOME ?? path.join(env.HOME, '.local', 'share'), 'protocol-otr', 'irc-bridge');
        const run = runExample('irc-bridge.mjs', ['--port', String(server.port), '--nick', 'keeper'], { cwd, env: { ...env, OTR_KEY_DIR: undefined } });
        try {
          await run.waitFor(/^connected keeper$/);
          run.send('/quit');
          assert.equal(await run.exited, 0);
        } finally {
          run.kill();
        }
        assert.deepEqual(fs.readdirSync(cwd), [], 'nothing in the working folder');
        assert.equal(fs.statSync(path.join(expected, 'otr.private_key')).mode & 0o777, 0o600);
        assert.equal(run.lines[0], `keys ${expected}`, 'the first line says where the keys are');
      }
    } finally {
      await server.stop();
    }
  },
);

test(
  'examples/irc-bridge.mjs: two bridges over ngircd — OTR, messages, SMP, nick changes on both sides, quit',
  { timeout: 240_000, skip: ircMissing },
  async () => {
    const server = await startNgircd(); // flood penalties off: the bridges pace themselves anyway
    const dirs = [tempDir(), tempDir()];
    const common = ['--host', '127.0.0.1', '--port', String(server.port), '--join', '#bridges', '--rate', '20', '--burst', '10'];
    const alice = runExample('irc-bridge.mjs', [...common, '--nick', 'alice', '--keys', dirs[0], '--smp-secret', 'bluedoor', '--echo']);
    const bob = runExample('irc-bridge.mjs', [...common, '--nick', 'bob', '--keys', dirs[1]]);
    try {
      await Promise.all([alice.waitFor(/^joined #bridges$/), bob.waitFor(/^joined #bridges$/)]);
      bob.send('/otr alice');
      await Promise.all([bob.waitFor(/^secure alice Unverified$/), alice.waitFor(/^secure bob Unverified$/)]);
      await bob.waitFor(/^query alice secure after 1$/);
      bob.send('/msg alice hello über IRC');
      await alice.waitFor(/^read bob encrypted: hello über IRC$/);
      await bob.waitFor(/^read alice encrypted: echo: hello über IRC$/);
      bob.send('/smp alice bluedoor What colour is the door?');
      await alice.waitFor(/^smp-request bob: What colour is the door\?$/);
      await bob.waitFor(/^smp alice verified$/);
      // bob changes nick: he ends the conversation first, alice's bridge follows the rename, and
      // bob's bridge starts OTR again from the new nick; trust stays with the contact.
      bob.send('/nick bob2');
      await alice.waitFor(/^finished bob$/);
      await alice.waitFor(/^renamed bob bob2$/);
      await Promise.all([alice.waitFor(/^secure bob2 Unverified$/), bob.waitFor(/^secure alice Private$/)]);
      bob.send('/msg alice after the nick change');
      await alice.waitFor(/^read bob2 encrypted: after the nick change$/);
      await bob.waitFor(/^read alice encrypted: echo: after the nick change$/);
      assert.match(fs.readFileSync(path.join(dirs[0], 'otr.fingerprints'), 'utf8'), /^bob2\talice\tprpl-irc\t[0-9a-f]{40}\t$/m);
      bob.send('/quit'); // leaves with the session ended: alice is told
      await alice.waitFor(/^finished bob2$/);
      assert.equal(await bob.exited, 0);
      assert.match(fs.readFileSync(path.join(dirs[1], 'otr.fingerprints'), 'utf8'), /^alice\tbob\tprpl-irc\t[0-9a-f]{40}\tsmp$/m);
    } finally {
      alice.kill();
      bob.kill();
      await Promise.all([alice.exited, bob.exited]);
      await server.stop();
    }
  },
);

test('examples/xmpp-bot.mjs: two bots over prosody — OTR, messages, SMP, quit', { timeout: 240_000, skip: xmppMissing }, async () => {
  const server = await startProsody({ alice: 'alice-pw', bob: 'bob-pw' });
  const service = ['--service', `xmpp://127.0.0.1:${server.port}`, '--allow-unencrypted', '--plain'];
  const alice = runExample('xmpp-bot.mjs', [
    ...service,
    '--jid',
    'alice@localhost',
    '--password',
    'alice-pw',
    '--keys',
    tempDir(),
    '--smp-secret',
    'bluedoor',
    '--echo',
  ]);
  const bob = runExample('xmpp-bot.mjs', [...service, '--jid', 'bob@localhost', '--password', 'bob-pw', '--keys', tempDir()]);
  try {
    await Promise.all([alice.waitFor(/^connected /), bob.waitFor(/^connected /)]);
    bob.send('/otr alice@localhost');
    await Promise.all([bob.waitFor(/^secure alice@localhost Unverified$/), alice.waitFor(/^secure bob@localhost Unverified$/)]);
    bob.send('/msg alice@localhost hello über XMPP');
    await alice.waitFor(/^read bob@localhost encrypted: hello über XMPP$/);
    await bob.waitFor(/^read alice@localhost encrypted: echo: hello über XMPP$/);
    bob.send('/smp alice@localhost bluedoor');
    await bob.waitFor(/^smp alice@localhost verified$/);
    bob.send('/quit');
    await alice.waitFor(/^finished bob@localhost$/);
    assert.equal(await bob.exited, 0);
  } finally {
    alice.kill();
    bob.kill();
    await Promise.all([alice.exited, bob.exited]);
    await server.stop();
  }
});
