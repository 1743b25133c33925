// Loading: ESM import, CommonJS require, bundled .d.ts, worker_threads.

import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { execFileSync, spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import * as esm from 'protocol-otr';
import { OTR, Policy, MessageEvent, SmpEvent, ErrorCode, Instag, OtrError } from 'protocol-otr';
import { REPO, T, tmpdir, closeAll, filesIn, rejectsCode } from './helpers/harness.mjs';

after(closeAll);

const require = createRequire(import.meta.url);

test('ESM import exposes OTR, the enums and OtrError', () => {
  assert.equal(typeof OTR, 'function');
  assert.equal(typeof OtrError, 'function');
  for (const e of [Policy, MessageEvent, SmpEvent, ErrorCode, Instag]) assert.equal(typeof e, 'object');
  assert.equal(esm.OTR, OTR);
});

test('CommonJS require("protocol-otr") exposes the same API as the ESM import', () => {
  const cjs = require('protocol-otr');
  for (const name of [
    'OTR',
    'OtrError',
    'Policy',
    'MessageEvent',
    'SmpEvent',
    'ErrorCode',
    'Instag',
    'POLICY_ALWAYS',
    'MSGEVENT_LOG_HEARTBEAT_RCVD',
    'SMPEVENT_SUCCESS',
    'ERRCODE_MSG_MALFORMED',
    'INSTAG_BEST',
  ]) {
    assert.ok(name in cjs, `require() exports ${name}`);
  }
  assert.deepEqual({ ...cjs.Policy }, { ...Policy });
  assert.deepEqual({ ...cjs.MessageEvent }, { ...MessageEvent });
  // One copy of the module, whichever way it is loaded (no dual-package hazard).
  assert.equal(cjs.OTR, OTR, 'require() and import give the same OTR class');
  assert.equal(cjs.OtrError, OtrError, 'require() and import give the same OtrError class');
});

test('CommonJS works from a plain CommonJS program (node -e with require)', T, () => {
  const dir = tmpdir();
  const code = `
    const { OTR, Policy, OtrError } = require('protocol-otr');
    const path = require('path');
    const d = ${JSON.stringify(dir)};
    const otr = new OTR({ privkeysFile: path.join(d, 'k'), contactsFile: path.join(d, 'f'), instanceTagsFile: path.join(d, 'i') });
    if (otr.findAccount('nobody@example.org', 'prpl-jabber') !== undefined) throw new Error('unexpected account');
    otr.close().then(() => console.log('cjs-ok ' + Policy.ALWAYS + ' ' + (typeof OtrError)));
  `;
  const out = execFileSync(process.execPath, ['-e', code], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  assert.match(out, /cjs-ok 110 function/);
});

test('dist/index.d.ts exists, is the package "types" and declares OTR', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  assert.equal(path.normalize(pkg.types), path.normalize('./dist/index.d.ts'));
  const dts = path.join(REPO, 'dist', 'index.d.ts');
  assert.ok(fs.existsSync(dts), 'dist/index.d.ts exists');
  const text = fs.readFileSync(dts, 'utf8');
  assert.match(text, /\bOTR\b/, 'index.d.ts mentions OTR');
});

test('the bundled types type-check a consumer and reject a wrong use', T, () => {
  const dir = tmpdir('otr-tsc-');
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(REPO, path.join(dir, 'node_modules', 'protocol-otr'), 'dir');
  const tsconfig = {
    compilerOptions: {
      strict: true,
      noEmit: true,
      module: 'node16',
      moduleResolution: 'node16',
      target: 'ES2022',
      types: ['node'],
      typeRoots: [path.join(REPO, 'node_modules', '@types')],
      skipLibCheck: false,
    },
    files: ['ok.mts'],
  };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
  fs.writeFileSync(
    path.join(dir, 'ok.mts'),
    `import { OTR, Policy, MessageEvent, SmpEvent, ErrorCode, Instag, OtrError } from 'protocol-otr';
     async function main(): Promise<void> {
       const otr = new OTR({ privkeysFile: 'a', contactsFile: 'b', instanceTagsFile: 'c' });
       const acct = await otr.account('a@b', 'prpl-jabber');
       const fp: string = acct.fingerprint;
       const contact = await acct.contact('c@d');
       const ch = contact.channel({
         policy: Policy.ALWAYS,
         maxMessageSize: 1409,
         onWrite: (c, m: string) => { void c.contact.name; void m; },
         onRead: (_c, m: string) => { void m; },
         onEvent: (_c, code: MessageEvent, msg?: string) => { void code; void msg; },
         onSmpEvent: (_c, code: SmpEvent, progress: number) => { void code; void progress; },
         onError: (_c, code: ErrorCode) => 'error ' + code,
       });
       const status: string = ch.status;
       const tags: number[] = ch.sessions();
       const ok: boolean = await ch.selectSession(Instag.BEST);
       const key: Buffer = await ch.createSymkey(2, 'x');
       await ch.write('hi');
       const e: unknown = null;
       if (e instanceof OtrError) { const code: string = e.code; void code; }
       void fp; void status; void tags; void ok; void key;
       await otr.close();
     }
     void main;
    `,
  );
  const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  const good = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(good.status, 0, `tsc on a correct consumer:\n${good.stdout}${good.stderr}`);

  // The types are real: a wrong use fails to compile.
  fs.writeFileSync(
    path.join(dir, 'ok.mts'),
    `import { OTR } from 'protocol-otr';
     const otr = new OTR({});
     const n: number = otr.account('a', 'b');
     void n;`,
  );
  const bad = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8', timeout: 120_000 });
  assert.notEqual(bad.status, 0, 'tsc rejects assigning Promise<Account> to number');
});

test('the addon loads and works in a worker thread alongside the main thread', T, async () => {
  const dir = tmpdir();
  const main = new OTR(filesIn(tmpdir()));
  const w = new Worker(new URL('./helpers/worker-load.mjs', import.meta.url), { workerData: dir });
  // Both listeners before anything can arrive: Node may emit 'exit' in the same tick as the
  // last 'message'.
  const exited = new Promise((resolve) => w.once('exit', resolve));
  const msg = await new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    exited.then((c) => reject(new Error(`worker exited with ${c} before its message`)));
  });
  assert.match(msg.fp, /^[0-9A-F]{8}( [0-9A-F]{8}){4}$/);
  assert.equal(msg.policy, 110);
  assert.equal(await exited, 0, 'the worker ends by itself with code 0');
  // The main thread's copy is unaffected by the worker's load and unload.
  assert.equal(main.findAccount('worker@example.org', 'prpl-jabber'), undefined);
  await main.close();
  await rejectsCode(() => main.account('x@example.org', 'prpl-jabber'), 'ERR_OTR_CLOSED', 'after close');
});
