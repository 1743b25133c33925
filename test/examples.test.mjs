// The two shipped bridge examples, run as the README says, against real servers on loopback:
// two instances of each talk through the server — OTR started with a retried query,
// messages both ways, SMP as a promise, a nick change (IRC), and /quit telling the other
// side the session ended.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serverMissing, startNgircd, startProsody, stopAllServers } from './helpers/servers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ircMissing = serverMissing('ngircd');
const xmppMissing = serverMissing('prosody');

// Examples still running when the file ends (a test that timed out) are stopped, so the
// test process can exit.
const children = new Set();
after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await stopAllServers();
});

// A running example: its output lines, a way to wait for one, and its standard input.
function run(script, args) {
  const child = spawn(process.execPath, [path.join(ROOT, 'examples', script), ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  const lines = [];
  const waiting = new Set();
  let partial = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.on('data', (d) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop();
    for (const line of parts) {
      lines.push(line);
      for (const w of [...waiting]) w();
    }
  });
  const exited = new Promise((resolve) => child.once('exit', (code) => {
    for (const w of [...waiting]) w();
    resolve(code);
  }));
  return {
    lines,
    exited,
    send: (command) => child.stdin.write(`${command}\n`),
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find((l) => pattern.test(l));
          if (found) {
            waiting.delete(check);
            resolve(found);
          } else if (child.exitCode !== null) {
            waiting.delete(check);
            reject(new Error(`${script} exited (${child.exitCode}) before printing ${pattern}:\n${lines.join('\n')}\n${stderr}`));
          }
        };
        waiting.add(check);
        check();
      });
    },
    kill: () => child.exitCode === null && child.kill('SIGTERM'),
  };
}

function keyDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'otr-example-keys-'));
}

test('examples/irc-bridge.mjs: two bridges over ngircd — OTR, messages, SMP, a nick change, quit', { timeout: 240_000, skip: ircMissing }, async () => {
  const server = await startNgircd(); // flood penalties off: the bridges pace themselves anyway
  const dirs = [keyDir(), keyDir()];
  const common = ['--host', '127.0.0.1', '--port', String(server.port), '--join', '#bridges', '--rate', '20', '--burst', '10'];
  const alice = run('irc-bridge.mjs', [...common, '--nick', 'alice', '--keys', dirs[0], '--smp-secret', 'bluedoor', '--echo']);
  const bob = run('irc-bridge.mjs', [...common, '--nick', 'bob', '--keys', dirs[1]]);
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
    // bob changes nick: alice's bridge follows it, and the session goes on.
    bob.send('/nick bob2');
    await alice.waitFor(/^renamed bob bob2$/);
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
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
});

test('examples/xmpp-bot.mjs: two bots over prosody — OTR, messages, SMP, quit', { timeout: 240_000, skip: xmppMissing }, async () => {
  const server = await startProsody({ alice: 'alice-pw', bob: 'bob-pw' });
  const dirs = [keyDir(), keyDir()];
  const service = ['--service', `xmpp://127.0.0.1:${server.port}`, '--plain'];
  const alice = run('xmpp-bot.mjs', [...service, '--jid', 'alice@localhost', '--password', 'alice-pw', '--keys', dirs[0], '--smp-secret', 'bluedoor', '--echo']);
  const bob = run('xmpp-bot.mjs', [...service, '--jid', 'bob@localhost', '--password', 'bob-pw', '--keys', dirs[1]]);
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
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
});
