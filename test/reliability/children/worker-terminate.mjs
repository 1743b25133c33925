// Child process of lifetimes.test.mjs: the addon used inside worker_threads, and the worker
// terminated in the middle of its work. Afterwards the addon still works in this process, and
// the process ends with code 0.
// Run by `node --test` on its own (no arguments) it does nothing.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

if (isMainThread && process.argv[2] === 'run') {
  const [dir, phase, rounds] = process.argv.slice(3);
  for (let r = 0; r < Number(rounds); r++) {
    const worker = new Worker(new URL(import.meta.url), { workerData: { dir, phase } });
    await new Promise((resolve, reject) => {
      worker.on('error', reject);
      worker.on('exit', (code) => (code === 1 ? resolve() : reject(new Error(`worker exited by itself with ${code}`))));
      worker.on('message', (m) => {
        if (m === 'go') setTimeout(() => worker.terminate(), r * 7);
      });
    });
  }
  // The addon still works here, in the main thread and in a new worker.
  const { openCopies, Net, makeSecure } = await import('../../helpers/harness.mjs');
  const [A, B] = await openCopies(dir, 2, 'after-');
  const link = new Net({ manual: true });
  const { a, b } = await link.connect(A, 'alice@example.org', B, 'bob@example.org');
  await makeSecure(link, a, b);
  await a.channel.write('still working');
  await link.pump();
  if (b.received.at(-1) !== 'still working') throw new Error('the addon stopped working');
  await Promise.all([A.close(), B.close()]);
  console.log('terminated', rounds, 'workers during', phase);
} else if (!isMainThread && workerData) {
  const { dir, phase } = workerData;
  if (phase === 'loaded') {
    await import('protocol-otr');
    setInterval(() => {}, 1000);
    parentPort.postMessage('go');
  } else {
    const { openCopies, Net, makeSecure, PROTO } = await import('../../helpers/harness.mjs');
    const [A, B] = await openCopies(dir, 2, 'w-');
    const link = new Net({ manual: true });
    const { a, b } = await link.connect(A, 'alice@example.org', B, 'bob@example.org', {}, { onSmp: () => 'secret' });
    const forever = async (step) => {
      for (;;) {
        await step();
        await link.pump();
      }
    };
    let n = 0;
    if (phase === 'keygen') {
      A.account('generated@example.org', PROTO);
      B.account('generated@example.org', PROTO);
      // The long form waits up to 350 ms before terminating: longer than a key generation can
      // take, and the worker must still be there (not exit by itself) when it comes.
      setInterval(() => {}, 1000);
      parentPort.postMessage('go');
    } else if (phase === 'ake') {
      parentPort.postMessage('go');
      forever(async () => {
        await a.channel.init();
      });
    } else {
      await makeSecure(link, a, b);
      parentPort.postMessage('go');
      if (phase === 'writes') {
        forever(async () => {
          for (let i = 0; i < 1000; i++) a.channel.write(`message ${n++}`);
          await a.channel.write('last of the burst');
        });
      } else if (phase === 'smp') {
        forever(async () => {
          await a.channel.smpVerify('secret');
        });
      }
      // 'idle': nothing more; the worker stays alive only until terminated.
      if (phase === 'idle') setInterval(() => {}, 1000);
    }
  }
}
