// Child process of lifetimes.test.mjs (run with --expose-gc): OTR instances used and then
// dropped without close(), some with a key generation still running; after gc() their key
// generation threads must be gone, and the process must end by itself with code 0.
// Run by `node --test` on its own (no arguments) it does nothing.
import fs from 'node:fs';

if (process.argv[2] === 'run') {
  const [dir, count] = process.argv.slice(3);
  const { openCopies, tick, PROTO } = await import('../../helpers/harness.mjs');
  const threads = () => Number(/Threads:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
  const n = Number(count);
  // Load the addon and initialise libgcrypt once before counting.
  const [warm] = await openCopies(dir, 1, 'warm-');
  await warm.close(); // its jobs done and key generation threads joined; the pool's threads stay
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
  // Collect until the finalizers have ended the dropped instances' key generation threads (no
  // clock: if they never end, the parent's time limit fails the test).
  while (threads() > base + 1) {
    globalThis.gc();
    await tick();
  }
  const after = threads();
  console.log(JSON.stringify({ base, during, after, instances: n }));
}
