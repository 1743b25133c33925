// Run by timer.test.mjs in a child process: leaves an AKE half-finished (bob has sent his
// D-H commit and libotr asked for the poll timer) and then simply stops doing anything.
// The process must exit by itself: the library's own timer (used when no onTimer is given)
// must not keep it alive. Args: aliceDir bobDir mode ('no-timer' | 'with-timer').
// (`node --test test/` also runs this file on its own; without arguments it does nothing.)
import path from 'node:path';

const [aliceDir, bobDir, mode] = process.argv.slice(2);

if (aliceDir && bobDir) {
  const { OTR } = await import('protocol-otr');
  const files = (d) => ({
    privkeysFile: path.join(d, 'otr.private_key'),
    contactsFile: path.join(d, 'otr.fingerprints'),
    instanceTagsFile: path.join(d, 'otr.instance_tags'),
  });
  const a = new OTR(files(aliceDir));
  const b = new OTR(files(bobDir));
  const alice = await a.account('alice@example.org', 'prpl-jabber');
  const bob = await b.account('bob@example.org', 'prpl-jabber');
  const toAlice = [];
  const toBob = [];
  const timers = [];
  const ac = (await alice.contact('bob@example.org')).channel({
    onWrite: (_c, m) => toBob.push(m),
    onRead() {},
  });
  const bobOpts = { onWrite: (_c, m) => toAlice.push(m), onRead() {} };
  if (mode === 'with-timer') bobOpts.onTimer = (_c, interval) => timers.push(interval);
  const bc = (await bob.contact('alice@example.org')).channel(bobOpts);
  await ac.init();
  await bc.read(toBob.shift());
  if (!toAlice[0] || !toAlice[0].startsWith('?OTR:AAMC')) throw new Error('bob did not send a D-H commit');
  await bc.ping();
  console.log(`half-ake ${mode} timers=${JSON.stringify(timers)}`);
  // no close(), no further work: the process must now exit on its own
}
