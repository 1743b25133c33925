// Child process of crashsafe.test.mjs: an OTR instance running contact calls on several
// threads at once (so on several libotr user states) while its fingerprints file is being
// rewritten, until the parent kills it with SIGKILL. Four lanes each loop: a new contact, an
// AKE with a peer instance in this process (the fingerprint is learnt by a lender state and
// reported to the trust store), a message, then setVerified(true) on the learnt fingerprint
// (an instance-wide call that writes the file). Each verification is announced
// ("want <id> <contact> <hex>") before it starts and confirmed ("done <id>") once its promise
// resolved; stdout is a pipe, so the lines are written synchronously.
// Run by `node --test` on its own (no arguments) it does nothing.
import path from 'node:path';

if (process.argv[2] === 'run') {
  const [dir, peerDir, run] = process.argv.slice(3);
  const { OTR, setThreads } = await import('protocol-otr');
  setThreads(4);
  const files = (d) => ({
    privkeysFile: path.join(d, 'otr.private_key'),
    contactsFile: path.join(d, 'otr.fingerprints'),
    instanceTagsFile: path.join(d, 'otr.instance_tags'),
  });
  const say = (line) => process.stdout.write(`${line}\n`);
  const owner = new OTR(files(dir));
  const peer = new OTR(files(peerDir));
  const ownerAccount = await owner.account('owner@example.org', 'prpl-jabber');
  const peerAccount = await peer.account('peer@example.org', 'prpl-jabber');
  let ids = 0;
  async function lane(k) {
    for (let i = 0; ; i++) {
      const name = `p-${run}-${k}-${i}@example.org`;
      const mine = await ownerAccount.contact(name);
      const theirs = await peerAccount.contact(`o-${run}-${k}-${i}@example.org`);
      let a;
      let b;
      const secure = new Promise((resolve) => {
        a = mine.channel({ onWrite: (c, m) => b.read(m).catch(() => {}), onRead() {}, onEvent() {}, onGoneSecure: resolve });
      });
      b = theirs.channel({ onWrite: (c, m) => a.read(m).catch(() => {}), onRead() {}, onEvent() {} });
      await a.init();
      await secure;
      await a.write('hello');
      const fp = mine.fingerprints()[0];
      const id = ++ids;
      say(`want ${id} ${name} ${fp.hash.replace(/ /g, '').toLowerCase()}`);
      await fp.setVerified(true);
      say(`done ${id}`);
    }
  }
  say('ready');
  for (let k = 0; k < 4; k++) lane(k);
}
