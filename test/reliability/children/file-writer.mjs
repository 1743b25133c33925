// Child process of crashsafe.test.mjs: rewrites the three files as fast as it can — new
// accounts (key + instance tag), new verified fingerprints, trust toggled — until the parent
// kills it with SIGKILL. Every step is announced ("want ...") before it starts and confirmed
// ("done") once its promise resolved; stdout is a pipe, so these lines are written
// synchronously and the parent knows exactly what was on disk at the kill.
// Run by `node --test` on its own (no arguments) it does nothing.
import crypto from 'node:crypto';
import path from 'node:path';

if (process.argv[2] === 'run') {
  const [dir, run] = process.argv.slice(3);
  const { OTR } = await import('protocol-otr');
  const otr = new OTR({
    privkeysFile: path.join(dir, 'otr.private_key'),
    contactsFile: path.join(dir, 'otr.fingerprints'),
    instanceTagsFile: path.join(dir, 'otr.instance_tags'),
  });
  const say = (line) => process.stdout.write(`${line}\n`);
  const owner = await otr.account('owner@example.org', 'prpl-jabber');
  say('ready');
  let n = 0;
  for (;;) {
    const roll = Math.random();
    n++;
    if (roll < 0.25) {
      const name = `acct-${run}-${n}@example.org`;
      say(`want key ${name}`);
      await otr.account(name, 'prpl-jabber');
    } else if (roll < 0.6 || owner.contacts().length === 0) {
      const contact = `c-${run}-${n}@example.org`;
      const hex = crypto.randomBytes(20).toString('hex');
      say(`want trust ${contact} ${hex} 1`);
      await owner.contact(contact, hex, true);
    } else {
      const contacts = owner.contacts();
      const contact = contacts[Math.floor(Math.random() * contacts.length)];
      const fp = contact.fingerprints()[0];
      const next = !fp.isVerified;
      say(`want trust ${contact.name} ${fp.hash.replace(/ /g, '').toLowerCase()} ${next ? 1 : 0}`);
      await fp.setVerified(next);
    }
    say('done');
  }
}
