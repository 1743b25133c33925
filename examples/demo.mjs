// Two parties in one process, each with its own OTR context and files: the OTR query and
// AKE, encrypted messages (wire text shown), SMP, the extra symmetric key, and finish.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OTR, MessageEvent, SmpEvent } from 'protocol-otr';

const HELP = `Usage: node examples/demo.mjs

Two OTR parties in one process, each with its own keys (generated in a temporary folder,
removed at the end): the query and AKE, encrypted messages with their wire text, SMP with a
question, the extra symmetric key, and finish. It takes no options and connects nowhere.
`;
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(HELP);
  process.exit(0);
}
if (args.length) {
  process.stderr.write(`error: unknown option ${args[0]}; --help says what the demo does\n`);
  process.exit(2);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'protocol-otr-demo-'));
const files = (who) => ({
  privkeysFile: path.join(dir, `${who}.private_key`),
  contactsFile: path.join(dir, `${who}.fingerprints`),
  instanceTagsFile: path.join(dir, `${who}.instance_tags`),
});

const wire = (text) => (text.length > 72 ? `${text.slice(0, 69)}...` : text).replace(/\n/g, '\\n');
const smpEventName = (code) => Object.keys(SmpEvent).find((k) => SmpEvent[k] === code);
const eventName = (code) => Object.keys(MessageEvent).find((k) => MessageEvent[k] === code);

// The "network": whatever one side writes is read by the other, in order.
const inbox = { alice: [], bob: [] };
const channels = {};
async function deliverAll() {
  while (inbox.alice.length || inbox.bob.length) {
    for (const who of ['alice', 'bob']) {
      const message = inbox[who].shift();
      if (message !== undefined) await channels[who].read(message);
    }
  }
}

function party(who, peer) {
  return {
    onWrite: (c, message) => {
      console.log(`  ${who} -> ${peer}: ${wire(message)}`);
      inbox[peer].push(message);
    },
    onRead: (c, message) => console.log(`  ${who} reads: "${message}"`),
    onGoneSecure: (c) => console.log(`  ${who}: gone secure (${c.status})`),
    onGoneInsecure: (c) => console.log(`  ${who}: gone insecure (${c.status})`),
    onUnverifiedFingerprint: (c, hash, seenBefore) => console.log(`  ${who}: ${seenBefore ? 'another' : 'new'} fingerprint for ${c.contact.name}: ${hash}`),
    onSmp: (c, question) => {
      console.log(`  ${who}: asked "${question}", answering`);
      return 'the blue door';
    },
    onSmpEvent: (c, code, progress) => console.log(`  ${who}: SMP ${smpEventName(code)} ${progress}%`),
    onSymkey: (c, key, use, useFor) => console.log(`  ${who}: received symmetric key for ${use} "${useFor}": ${key.toString('hex')}`),
    onEvent: (c, code, message) => console.log(`  ${who}: event ${eventName(code)}${message ? `: ${message}` : ''}`),
  };
}

const aliceOtr = new OTR(files('alice'));
const bobOtr = new OTR(files('bob'));

console.log('Generating keys (off the event loop)...');
const [alice, bob] = await Promise.all([aliceOtr.account('alice@example.org', 'prpl-jabber'), bobOtr.account('bob@example.org', 'prpl-jabber')]);
console.log(`  alice: ${alice.fingerprint}\n  bob:   ${bob.fingerprint}`);

channels.alice = (await alice.contact('bob@example.org')).channel(party('alice', 'bob'));
channels.bob = (await bob.contact('alice@example.org')).channel(party('bob', 'alice'));

console.log('\n1. Alice asks for an OTR conversation; the AKE runs');
await channels.alice.init();
await deliverAll();
console.log(`  status: alice ${channels.alice.status}, bob ${channels.bob.status}`);

console.log('\n2. Encrypted messages');
await channels.alice.write('Hi Bob, this is private.');
await deliverAll();
await channels.bob.write('Hi Alice! Nobody else can read this.');
await deliverAll();

console.log('\n3. SMP: Alice asks a question only Bob can answer');
await channels.alice.smpVerify('the blue door', 'Where did we first meet?');
await deliverAll();
console.log(`  status: alice ${channels.alice.status} (verified: ${channels.alice.contact.activeFingerprint?.isVerified}), bob ${channels.bob.status}`);

console.log('\n4. Extra symmetric key');
const key = await channels.alice.createSymkey(2, 'file transfer ✓');
console.log(`  alice's key: ${key.toString('hex')}`);
await deliverAll();

console.log('\n5. Alice finishes');
await channels.alice.finish();
await deliverAll();
console.log(`  status: alice ${channels.alice.status}, bob ${channels.bob.status}`);

await Promise.all([aliceOtr.close(), bobOtr.close()]);
fs.rmSync(dir, { recursive: true, force: true });
console.log('\nDone.');
