// Child process of crashsafe.test.mjs, run as an unprivileged user: loads the files and
// prints the outcome as JSON ({ ok } or { code, message }).
// Run by `node --test` on its own (no arguments) it does nothing.
import path from 'node:path';

if (process.argv[2] === 'run') {
  const dir = process.argv[3];
  const { OTR } = await import('protocol-otr');
  let otr;
  try {
    otr = new OTR({
      privkeysFile: path.join(dir, 'otr.private_key'),
      contactsFile: path.join(dir, 'otr.fingerprints'),
      instanceTagsFile: path.join(dir, 'otr.instance_tags'),
    });
    console.log(JSON.stringify({ ok: true }));
  } catch (error) {
    console.log(JSON.stringify({ code: error.code, message: error.message, name: error.constructor.name }));
  }
  await otr?.close().catch(() => {});
}
