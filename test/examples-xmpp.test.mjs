// examples/xmpp-bot.mjs as a bot operator runs it, over prosody on loopback: login with the
// SASL mechanism the server offers (SCRAM), TLS by default, failures in one line, a console no
// command can crash, SMP answered and aborted from the console, a plain-text query, and the
// line that says why a write was refused once the contact ended the conversation.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { client as xmppClient, xml } from '@xmpp/client';
import { ROOT, killExamples, removeTempDirs, runExample, tempDir } from './helpers/examples.mjs';
import { freePort, serverMissing, startProsody, stopAllServers } from './helpers/servers.mjs';

const skip = serverMissing('prosody');
const T = { timeout: 120_000, skip };
// A self-signed certificate for localhost (valid 2000–2100), made for these tests only.
const CERTIFICATE = path.join(ROOT, 'test', 'fixtures', 'tls', 'localhost.pem');
const TLS = { certificate: CERTIFICATE, key: path.join(ROOT, 'test', 'fixtures', 'tls', 'localhost.key') };

after(async () => {
  killExamples();
  await stopAllServers();
  removeTempDirs();
});

function bot(server, user, extra = []) {
  return runExample('xmpp-bot.mjs', [
    '--service',
    `xmpp://127.0.0.1:${server.port}`,
    '--jid',
    `${user}@localhost`,
    '--password',
    `${user}-pw`,
    '--keys',
    tempDir(),
    ...extra,
  ]);
}
const LOOPBACK = ['--allow-unencrypted', '--plain']; // quick logins where login is not the point

// Two bots, alice and bob, logged in quickly (LOOPBACK).
function twoBots(server) {
  return { alice: bot(server, 'alice', LOOPBACK), bob: bot(server, 'bob', LOOPBACK) };
}

// Both connected, then bob starts OTR with alice: resolves once both print the session secure.
async function secure(alice, bob) {
  await Promise.all([alice.waitFor(/^connected /), bob.waitFor(/^connected /)]);
  bob.send('/otr alice@localhost');
  await Promise.all([alice.waitFor(/^secure bob@localhost Unverified$/), bob.waitFor(/^secure alice@localhost Unverified$/)]);
}

// A failed start: exit code 1, one line on standard output after the key lines, nothing else.
async function failsInOneLine(run, pattern) {
  assert.equal(await run.exited, 1);
  const lines = run.lines.filter((l) => !/^(keys|fingerprint) /.test(l));
  assert.equal(lines.length, 1, `one line: ${JSON.stringify(run.lines)}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(lines[0], /<|\bat .*:\d+:\d+/, 'no XML, no stack trace');
  assert.equal(run.stderr, '', 'nothing on standard error');
}

test('xmpp-bot without --plain logs in with SCRAM-SHA-1 (a server that offers no PLAIN without TLS)', T, async () => {
  const server = await startProsody({ alice: 'alice-pw' }, { plainAuth: false });
  const alice = bot(server, 'alice', ['--allow-unencrypted']);
  try {
    await alice.waitFor(/^connected alice@localhost$/);
    alice.send('/quit');
    assert.equal(await alice.exited, 0);
  } finally {
    alice.kill();
    await server.stop();
  }
});

test(
  'xmpp-bot requires TLS by default: STARTTLS with a certificate given by --ca, SCRAM over it; without TLS it refuses to log in, in one line',
  T,
  async () => {
    const secure = await startProsody({ alice: 'alice-pw' }, { tls: TLS });
    const alice = bot(secure, 'alice', ['--ca', CERTIFICATE]);
    try {
      await alice.waitFor(/^connected alice@localhost$/);
      alice.send('/quit');
      assert.equal(await alice.exited, 0);
    } finally {
      alice.kill();
      await secure.stop();
    }
    const unencrypted = await startProsody({ alice: 'alice-pw' });
    try {
      const refused = bot(unencrypted, 'alice');
      await failsInOneLine(
        refused,
        /^error: cannot log in as alice@localhost at xmpp:\/\/127\.0\.0\.1:\d+: xmpp:\/\/127\.0\.0\.1:\d+ offers no TLS: .*--allow-unencrypted/,
      );
    } finally {
      await unencrypted.stop();
    }
  },
);

test('xmpp-bot connection and login errors are one line (exit 1): no stack trace, no server XML', T, async () => {
  const secure = await startProsody({ alice: 'alice-pw' }, { tls: TLS });
  try {
    await failsInOneLine(bot(secure, 'alice'), /^error: cannot connect as alice@localhost at .*: self-signed certificate.*--ca FILE/);
    await failsInOneLine(
      runExample('xmpp-bot.mjs', [
        '--service',
        `xmpp://127.0.0.1:${secure.port}`,
        '--jid',
        'alice@localhost',
        '--password',
        'wrong',
        '--keys',
        tempDir(),
        '--ca',
        CERTIFICATE,
      ]),
      /^error: cannot log in as alice@localhost at .*: not-authorized/,
    );
  } finally {
    await secure.stop();
  }
  const closed = await freePort();
  await failsInOneLine(
    runExample('xmpp-bot.mjs', ['--service', `xmpp://127.0.0.1:${closed}`, '--jid', 'alice@localhost', '--password', 'pw', '--keys', tempDir()]),
    /^error: cannot connect as alice@localhost at .*: connect ECONNREFUSED/,
  );
});

test('xmpp-bot console: /otr, /finish, /smp and every other command without its arguments print a usage line and crash nothing', T, async () => {
  const server = await startProsody({ alice: 'alice-pw' });
  const alice = bot(server, 'alice', LOOPBACK);
  try {
    await alice.waitFor(/^connected alice@localhost$/);
    const commands = ['/otr', '/finish', '/smp', '/smp bob@localhost', '/msg', '/msg bob@localhost', '/smp-answer bob@localhost', '/smp-abort', '/forget'];
    const mark = alice.lines.length;
    for (const command of commands) alice.send(command);
    alice.send('/smp-answer bob@localhost secret'); // nobody asked: refused, in a line
    alice.send('/quit');
    assert.equal(await alice.exited, 0);
    const usage = alice.lines.slice(mark).filter((l) => l.startsWith('usage: '));
    assert.deepEqual(usage, [
      'usage: /otr NAME',
      'usage: /finish NAME',
      'usage: /smp NAME SECRET [QUESTION...]',
      'usage: /smp NAME SECRET [QUESTION...]',
      'usage: /msg NAME TEXT...',
      'usage: /msg NAME TEXT...',
      'usage: /smp-answer NAME SECRET...',
      'usage: /smp-abort NAME',
      'usage: /forget NAME',
    ]);
    assert.ok(alice.lines.includes('error: bob@localhost has not asked for SMP'), alice.lines.join('\n'));
    assert.equal(alice.stderr, '');
  } finally {
    alice.kill();
    await server.stop();
  }
});

test("xmpp-bot without --smp-secret: the contact's SMP request is answered (/smp-answer) or aborted (/smp-abort) from the console", T, async () => {
  const server = await startProsody({ alice: 'alice-pw', bob: 'bob-pw' });
  const { alice, bob } = twoBots(server);
  try {
    await secure(alice, bob);
    bob.send('/smp alice@localhost bluedoor Which door?');
    await alice.waitFor(/^smp-request bob@localhost: Which door\?$/);
    await alice.waitFor(/^answer with \/smp-answer bob@localhost SECRET, or refuse with \/smp-abort bob@localhost$/);
    alice.send('/smp-answer bob@localhost bluedoor');
    await bob.waitFor(/^smp alice@localhost verified$/);
    await alice.waitFor(/^smp bob@localhost answered$/);
    const mark = [alice.lines.length, bob.lines.length];
    bob.send('/smp alice@localhost reddoor');
    await alice.waitFor(/^smp-request bob@localhost$/, mark[0]);
    alice.send('/smp-abort bob@localhost');
    await bob.waitFor(/^smp alice@localhost aborted$/, mark[1]);
    bob.send('/quit');
    alice.send('/quit');
    assert.deepEqual(await Promise.all([alice.exited, bob.exited]), [0, 0]);
  } finally {
    alice.kill();
    bob.kill();
    await server.stop();
  }
});

test('xmpp-bot: the query a client without OTR shows is plain text, not HTML', T, async () => {
  const server = await startProsody({ alice: 'alice-pw', carol: 'carol-pw' });
  const alice = bot(server, 'alice', LOOPBACK);
  const carol = xmppClient({
    service: `xmpp://127.0.0.1:${server.port}`,
    domain: 'localhost',
    resource: 'plain',
    credentials: (auth) => auth({ username: 'carol', password: 'carol-pw' }, 'PLAIN'),
  });
  try {
    const body = new Promise((resolve) => carol.on('stanza', (s) => s.is('message') && s.getChildText('body') !== null && resolve(s.getChildText('body'))));
    await carol.start();
    await carol.send(xml('presence'));
    await alice.waitFor(/^connected /);
    alice.send('/otr carol@localhost');
    const query = await body;
    assert.match(query, /^\?OTRv23\? alice@localhost asks for an encrypted \(Off-the-Record\) conversation/);
    assert.doesNotMatch(query, /<[a-z]/i, 'no HTML tags');
    alice.send('/quit');
    assert.equal(await alice.exited, 0);
  } finally {
    alice.kill();
    await carol.stop().catch(() => {});
    await server.stop();
  }
});

test('xmpp-bot: after the contact ends the conversation, a refused write is one clear line naming /otr, and /otr starts a new one', T, async () => {
  const server = await startProsody({ alice: 'alice-pw', bob: 'bob-pw' });
  const { alice, bob } = twoBots(server);
  try {
    await secure(alice, bob);
    bob.send('/finish alice@localhost');
    await alice.waitFor(/^finished bob@localhost$/);
    const mark = alice.lines.length;
    alice.send('/msg bob@localhost are you there?');
    await alice.waitFor(/^not sent to bob@localhost: bob@localhost ended the private conversation; \/otr bob@localhost starts a new one$/, mark);
    alice.send('/otr bob@localhost');
    await alice.waitFor(/^secure bob@localhost Unverified$/, mark);
    alice.send('/msg bob@localhost are you there?');
    await bob.waitFor(/^read alice@localhost encrypted: are you there\?$/);
    bob.send('/quit');
    alice.send('/quit');
    assert.deepEqual(await Promise.all([alice.exited, bob.exited]), [0, 0]);
  } finally {
    alice.kill();
    bob.kill();
    await server.stop();
  }
});
