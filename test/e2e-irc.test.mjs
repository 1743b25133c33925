// End to end over a real IRC server: ngircd on loopback, started and stopped here, two
// bridges talking through it over raw sockets. Once with flood penalties off (1,000
// messages each way), once with ngircd's default flood penalties and a Pacer in front of
// each connection.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Pacer } from 'protocol-otr';
import { makeKeys, runConversation } from './helpers/e2e-scenario.mjs';
import { closeAllIrc, connectIrc } from './helpers/irc-client.mjs';
import { serverMissing, startNgircd, stopAllServers } from './helpers/servers.mjs';

const missing = serverMissing('ngircd');
const T = { timeout: 240_000, skip: missing };
const PROTOCOL = 'prpl-irc';

// An IRC endpoint for the scenario: every wire message is one PRIVMSG line; every line that
// arrives is checked for ngircd's truncation mark.
function ircEndpoint(client, { pacer } = {}) {
  const stats = { linesOut: 0, privmsgsIn: 0, cut: [], errors: [], closed: false };
  client.on('irc-error', (line) => stats.errors.push(line));
  client.on('error-line', (line) => stats.errors.push(line));
  client.on('close', () => (stats.closed = true));
  let handler = () => {};
  client.on('privmsg', (from, text, line) => {
    stats.privmsgsIn++;
    if (line.endsWith('[CUT]') || Buffer.byteLength(line) > 510) stats.cut.push(line);
    handler(from, text);
  });
  return {
    name: client.nick,
    stats,
    send(to, text) {
      assert.ok(!/[\r\n]/.test(text), `a wire message with a line break: ${JSON.stringify(text.slice(0, 80))}`);
      const line = `PRIVMSG ${to} :${text}`;
      stats.linesOut++;
      if (pacer) pacer.push(line, to);
      else client.send(line);
    },
    onMessage(h) {
      handler = h;
    },
  };
}

// alice changes nick; resolves when both clients have seen it (bob's bridge follows it).
function nickChange(aliceClient, bobClient) {
  return (newNick, follow) =>
    new Promise((resolve, reject) => {
      let seen = 0;
      const done = () => ++seen === 2 && resolve();
      aliceClient.once('nick', (from, to) => (to === newNick ? done() : reject(new Error(`nick ${from} → ${to}`))));
      bobClient.once('nick', (from, to) => {
        follow(from, to).then(done, reject);
      });
      aliceClient.send(`NICK ${newNick}`);
    });
}

async function conversation({ floodPenalties, messages, pacing }) {
  const server = await startNgircd({ floodPenalties });
  const keys = await makeKeys(PROTOCOL, 'alice', 'bob');
  const clients = [];
  try {
    const [a, b] = await Promise.all([connectIrc('alice', server.port), connectIrc('bob', server.port)]);
    clients.push(a, b);
    await Promise.all([a.join('#bridges'), b.join('#bridges')]);
    const pacers = pacing ? [a, b].map((c) => new Pacer({ ...pacing, send: (line) => c.send(line) })) : [];
    let maxDepth = 0;
    for (const p of pacers) {
      const push = p.push.bind(p);
      p.push = (line, target) => {
        const queued = push(line, target);
        maxDepth = Math.max(maxDepth, p.depth);
        return queued;
      };
    }
    const alice = ircEndpoint(a, { pacer: pacers[0] });
    const bob = ircEndpoint(b, { pacer: pacers[1] });
    alice.changeName = nickChange(a, b);
    const figures = await runConversation({ alice, bob, protocol: PROTOCOL, messages, renameHalfway: true, keys });
    await Promise.all(pacers.map((p) => p.drained()));
    for (const [who, e] of [
      ['alice', alice],
      ['bob', bob],
    ]) {
      assert.deepEqual(e.stats.cut, [], `${who}: no line cut by the server`);
      assert.deepEqual(e.stats.errors, [], `${who}: no error from the server`);
      assert.equal(e.stats.closed, false, `${who}: still connected`);
    }
    assert.match(figures.fingerprintsFile, /^alice_\tbob\tprpl-irc\t[0-9a-f]{40}\tsmp$/m, 'trust is stored under the new nick');
    return {
      ...figures,
      lines: alice.stats.linesOut + bob.stats.linesOut,
      privmsgsIn: alice.stats.privmsgsIn + bob.stats.privmsgsIn,
      maxDepth,
      pacerDropped: pacers.reduce((n, p) => n + p.dropped, 0),
    };
  } finally {
    await Promise.all(clients.map((c) => c.quit()));
    await server.stop();
    keys.remove();
  }
}

after(async () => {
  closeAllIrc();
  await stopAllServers();
});

before(() => {
  if (missing) console.log(`# skipped: ${missing}`);
});

test(
  'IRC (ngircd, flood penalties off): AKE, SMP with a question, 1,000 messages each way, a nick change, finish — 0 lost, 0 reordered, no [CUT]',
  T,
  async () => {
    const f = await conversation({ floodPenalties: false, messages: 1000 });
    assert.equal(f.privmsgsIn, f.lines, 'every line sent arrived');
    console.log(
      `# IRC e2e: 1,000 messages each way (50 per side multi-fragment, 143 per side unicode), ${f.lines} PRIVMSG lines, AKE ${f.akeMs} ms, SMP + messages + nick change ${f.messagesMs} ms, total ${f.totalMs} ms`,
    );
  },
);

test('IRC (ngircd, default flood penalties) with a Pacer: nothing dropped, nobody disconnected', T, async () => {
  // ngircd's default lets about 2 lines/s per client through once a short burst is spent;
  // the pacers keep to that, so the server never queues a backlog (and a PONG never waits
  // behind one). 40 messages each way keep the run under a minute.
  const f = await conversation({ floodPenalties: true, messages: 40, pacing: { linesPerSecond: 2, burst: 3 } });
  assert.equal(f.privmsgsIn, f.lines, 'every line sent arrived');
  assert.ok(f.maxDepth > 0, 'the pacers held lines back');
  assert.equal(f.pacerDropped, 0, 'the pacers dropped nothing');
  console.log(
    `# IRC e2e with flood penalties: 40 messages each way (2 per side multi-fragment), ${f.lines} PRIVMSG lines paced at 2 lines/s (burst 3) per client, deepest pacer queue ${f.maxDepth}, AKE ${f.akeMs} ms, SMP + messages + nick change ${f.messagesMs} ms, total ${f.totalMs} ms`,
  );
});
