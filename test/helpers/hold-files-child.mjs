// A second process that opens a file set (as a bridge does) and holds it until its stdin
// closes: prints "ready <pid>" once open, "closed" once closed. With "exit", it ends with
// process.exit while still open (no close()), as a crashing bridge would.
import { OTR } from 'protocol-otr';
import { filesIn } from './harness.mjs';

const [dir, mode] = process.argv.slice(2);
const otr = new OTR(filesIn(dir));
await otr.account('bridge@example.org', 'prpl-jabber');
process.stdout.write(`ready ${process.pid}\n`);
process.stdin.resume();
process.stdin.on('end', async () => {
  if (mode === 'exit') process.exit(0);
  await otr.close();
  process.stdout.write('closed\n');
});
