// Child process of lifetimes.test.mjs (run with --expose-gc): OTR instances used and then
// dropped without close(), some with a key generation still running; after gc() their worker
// threads must be gone, and the process must end by itself with code 0.
// Run by `node --test` on its own (no arguments) it does nothing.
import fs from 'node:fs';

if (process.argv[2] === 'run') {
  const [dir, count] = process.argv.slice(3);
  const { openCopies, sleep, PROTO } = await import('../util.mjs');
  const threads = () => Number(/Threads:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
  const n = Number(count);
  // Load the addon and initialise libgcrypt once before counting.
  const [warm] = await openCopies(dir, 1, 'warm-');
  await warm.close();
  await sleep(50);
  const base = threads();

  async function useAndDrop(i) {
    const [otr] = await openCopies(dir, 1, `i${i}-`);
    const account = await otr.account('alice@example.org', PROTO);
    const contact = await account.contact('bob@example.org');
    const channel = contact.channel({ onWrite() {}, onRead() {}, onEvent() {} });
    await channel.init();
    await channel.write('plain text, then dropped');
    if (i % 4 === 0) otr.account(`gen${i}@example.org`, PROTO); // a key generation in flight when dropped
    if (i % 4 === 1) channel.write('a write in flight when dropped');
  }
  for (let i = 0; i < n; i++) await useAndDrop(i);
  const during = threads();
  for (let i = 0; i < 100 && threads() > base + 1; i++) {
    globalThis.gc();
    await sleep(20);
  }
  const after = threads();
  console.log(JSON.stringify({ base, during, after, instances: n }));
}
