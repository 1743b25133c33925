// examples/irc-bridge.mjs as a bridge operator runs it, over ngircd on loopback: nicks in use
// (at registration, at run time), its own nick change while conversations are encrypted, and
// a user's nick change onto another contact's name. The users are OTR clients on the library
// over raw IRC connections: like irssi-otr, they keep sessions by nick and follow no rename.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeAllIrc, connectIrc } from './helpers/irc-client.mjs';
import { killExamples, otrUser, removeTempDirs, runExample, tempDir } from './helpers/examples.mjs';
import { serverMissing, startNgircd, stopAllServers } from './helpers/servers.mjs';

const skip = serverMissing('ngircd');
const T = { timeout: 120_000, skip };

after(async () => {
  killExamples();
  closeAllIrc();
  await stopAllServers();
  removeTempDirs();
});

function bridgeArgs(server, nick) {
  return ['--host', '127.0.0.1', '--port', String(server.port), '--nick', nick, '--join', '#otr', '--keys', tempDir(), '--rate', '50', '--burst', '20'];
}

// A user on IRC with an OTR client: joined to #otr (where the bridge learns of nick changes).
async function ircUser(server, nick) {
  const client = await connectIrc(nick, server.port);
  const user = await otrUser(nick, 'prpl-irc', (to, text) => client.send(`PRIVMSG ${to} :${text}`));
  client.on('privmsg', (from, text) => user.receive(from, text));
  await client.join('#otr');
  return Object.assign(user, { client });
}

const secureWith = (name) => (e) => e.kind === 'secure' && e.name === name;

test('irc-bridge: a nick in use at registration is replaced by NICK_, not fatal', T, async () => {
  const server = await startNgircd();
  const holder = await connectIrc('otrbot', server.port);
  const bridge = runExample('irc-bridge.mjs', bridgeArgs(server, 'otrbot'));
  try {
    await bridge.waitFor(/^nick otrbot is in use: trying otrbot_$/);
    await bridge.waitFor(/^connected otrbot_$/);
    bridge.send('/quit');
    assert.equal(await bridge.exited, 0);
  } finally {
    bridge.kill();
    await holder.quit();
    await server.stop();
  }
});

test('irc-bridge: its /nick onto a nick in use at run time is not fatal: the old nick stays, a line says so, its conversations go on', T, async () => {
  const server = await startNgircd();
  const holder = await connectIrc('taken', server.port);
  const bridge = runExample('irc-bridge.mjs', bridgeArgs(server, 'otrbot'));
  let carol;
  try {
    await bridge.waitFor(/^joined #otr$/);
    carol = await ircUser(server, 'carol');
    bridge.send('/otr carol');
    await Promise.all([bridge.waitFor(/^secure carol Unverified$/), carol.until(secureWith('otrbot'))]);
    const mark = bridge.lines.length;
    bridge.send('/nick taken');
    await bridge.waitFor(/^error: nick taken is in use: still otrbot$/, mark);
    // The conversation, ended for the nick change, is queried again under the nick we kept.
    await carol.until(
      secureWith('otrbot'),
      carol.log.findIndex((e) => e.kind === 'finished'),
    );
    await bridge.waitFor(/^query carol secure after 1$/, mark);
    bridge.send('/msg carol still here');
    await carol.until((e) => e.kind === 'read' && e.text === 'still here' && e.encrypted);
    bridge.send('/nick otrbot2');
    await bridge.waitFor(/^nick otrbot2$/, mark);
    bridge.send('/quit');
    assert.equal(await bridge.exited, 0);
  } finally {
    bridge.kill();
    await carol?.otr.close();
    await holder.quit();
    await server.stop();
  }
});

test(
  'irc-bridge: its own nick change while encrypted ends each conversation under the old nick first, then OTR restarts from the new one (a client that keeps sessions by nick replies encrypted)',
  T,
  async () => {
    const server = await startNgircd();
    const bridge = runExample('irc-bridge.mjs', bridgeArgs(server, 'otrbot'));
    let carol;
    try {
      await bridge.waitFor(/^joined #otr$/);
      carol = await ircUser(server, 'carol');
      bridge.send('/otr carol');
      await Promise.all([bridge.waitFor(/^secure carol Unverified$/), carol.until(secureWith('otrbot'))]);
      const nickSeen = new Promise((resolve) => carol.client.on('nick', (from, to) => from === 'otrbot' && resolve(to)));
      const mark = bridge.lines.length;
      bridge.send('/nick otrbot2');
      assert.equal(await nickSeen, 'otrbot2');
      // Everything the bridge sent before its NICK has reached carol's client: the end is there.
      await carol.read();
      assert.ok(
        carol.log.some((e) => e.kind === 'finished' && e.name === 'otrbot'),
        `carol's session with otrbot ended before the nick change: ${JSON.stringify(carol.log)}`,
      );
      await carol.until(secureWith('otrbot2'));
      await carol.router.write('otrbot2', 'reply to the new nick');
      await bridge.waitFor(/^read carol encrypted: reply to the new nick$/, mark);
      bridge.send('/msg carol and back');
      await carol.until((e) => e.kind === 'read' && e.name === 'otrbot2' && e.text === 'and back' && e.encrypted);
      assert.deepEqual(
        carol.log.filter((e) => e.kind === 'read' && !e.encrypted),
        [],
        'nothing in plaintext',
      );
      bridge.send('/quit');
      assert.equal(await bridge.exited, 0);
    } finally {
      bridge.kill();
      await carol?.otr.close();
      await server.stop();
    }
  },
);

test(
  "irc-bridge: a user's nick change onto another contact's name (ERR_OTR_CONTACT_EXISTS) is reported, their messages still read, and /forget gives them the name",
  T,
  async () => {
    const server = await startNgircd();
    const bridge = runExample('irc-bridge.mjs', bridgeArgs(server, 'otrbot'));
    let carol;
    let dave;
    try {
      await bridge.waitFor(/^joined #otr$/);
      [carol, dave] = await Promise.all([ircUser(server, 'carol'), ircUser(server, 'dave')]);
      bridge.send('/otr carol');
      bridge.send('/otr dave');
      await Promise.all([carol.until(secureWith('otrbot')), dave.until(secureWith('otrbot'))]);
      await Promise.all([bridge.waitFor(/^secure carol Unverified$/), bridge.waitFor(/^secure dave Unverified$/)]);
      // dave leaves without ending his session: his contact has something to lose.
      await dave.client.quit();
      carol.client.send('NICK dave');
      await bridge.waitFor(/^error ERR_OTR_CONTACT_EXISTS: carol is now dave, but dave is another contact .*\/forget dave/);
      // carol goes on writing as dave: encrypted, then a plaintext line after it (in order).
      await carol.router.write('otrbot', 'after the refused rename');
      carol.client.send('PRIVMSG otrbot :plaintext marker');
      await bridge.waitFor(/ plaintext marker$/); // an event: plaintext inside an encrypted conversation
      assert.ok(bridge.lines.includes('read carol encrypted: after the refused rename'), bridge.lines.join('\n'));
      // The bridge's messages to carol go to her new nick.
      bridge.send('/msg carol to your new nick');
      await carol.until((e) => e.kind === 'read' && e.text === 'to your new nick' && e.encrypted);
      // /forget dave: the old contact goes, carol takes the name, her session with it.
      const mark = bridge.lines.length;
      bridge.send('/forget dave');
      await bridge.waitFor(/^forgot dave$/, mark);
      await bridge.waitFor(/^renamed carol dave$/, mark);
      await carol.router.write('otrbot', 'under my new name');
      await bridge.waitFor(/^read dave encrypted: under my new name$/, mark);
      bridge.send('/quit');
      assert.equal(await bridge.exited, 0);
    } finally {
      bridge.kill();
      await Promise.all([carol?.otr.close(), dave?.otr.close()]);
      await server.stop();
    }
  },
);
