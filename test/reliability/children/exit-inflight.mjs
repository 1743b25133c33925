// Child process of lifetimes.test.mjs: the process ends while work is in flight — by
// process.exit(code), by the event loop draining, or by an uncaught exception. The exit code
// must be the one asked for, with no crash or abort.
// Run by `node --test` on its own (no arguments) it does nothing.
if (process.argv[2] === 'run') {
  const [dir, phase, codeText] = process.argv.slice(3);
  const code = Number(codeText);
  const { openCopies, Net, makeSecure, PROTO } = await import('../../helpers/harness.mjs');
  const [A, B] = await openCopies(dir, 2, 'x-');
  const link = new Net({ manual: true });
  let exitInCallback = false;
  const { a, b } = await link.connect(
    A,
    'alice@example.org',
    B,
    'bob@example.org',
    { onWrite: () => exitInCallback && process.exit(code) },
    { onSmp: () => 'secret' },
  );
  if (phase === 'keygen') {
    A.account('generated@example.org', PROTO);
    setTimeout(() => process.exit(code), 10);
  } else if (phase === 'ake') {
    // Exit from inside onWrite while the AKE is under way.
    a.channel.init();
    b.channel.init();
    link.pump();
    setTimeout(() => (exitInCallback = true), 5);
  } else {
    await makeSecure(link, a, b);
    if (phase === 'writes') {
      for (let i = 0; i < 100; i++) a.channel.write(`message ${i}`);
      for (let i = 0; i < 100; i++) b.channel.write(`reply ${i}`);
      b.channel.init(); // and an AKE (refresh) pending
      process.exit(code);
    } else if (phase === 'smp') {
      a.channel.smpVerify('secret');
      link.pump();
      setImmediate(() => process.exit(code));
    } else if (phase === 'natural') {
      // No exit call: the event loop stays alive until the writes are handed over.
      let written = 0;
      for (let i = 0; i < 100; i++) a.channel.write(`message ${i}`).then(() => written++);
      process.on('exit', () => {
        if (written !== 100) {
          console.error(`only ${written} of 100 writes completed before exit`);
          process.exitCode = 9;
        }
      });
    } else if (phase === 'throw') {
      for (let i = 0; i < 100; i++) a.channel.write(`message ${i}`);
      setImmediate(() => {
        throw new Error('deliberate uncaught exception with writes in flight');
      });
    }
  }
}
