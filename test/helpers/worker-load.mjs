// Loaded in a worker thread by loading.test.mjs: the addon must load there too.
// (`node --test test/` also runs this file on its own; then it does nothing.)
import { parentPort, workerData } from 'node:worker_threads';
import path from 'node:path';

if (parentPort && workerData) {
  const { OTR, Policy } = await import('protocol-otr');
  const d = workerData;
  const otr = new OTR({
    privkeysFile: path.join(d, 'k'),
    contactsFile: path.join(d, 'f'),
    instanceTagsFile: path.join(d, 'i'),
  });
  const acct = await otr.account('worker@example.org', 'prpl-jabber');
  parentPort.postMessage({ fp: acct.fingerprint, policy: Policy.ALWAYS });
  await otr.close();
}
