// `npm test`: the whole suite with the value-returning callbacks left out (what most users
// run), the interop run against irssi included, then the behaviour suites again with every
// party installing them (a pool thread asks JS and waits for the answer). OTR_TEST_CALLBACKS
// selects the mode; see test/helpers/harness.mjs.
//   node scripts/run-tests.mjs              both passes
//   node scripts/run-tests.mjs FILES...     those files, in both modes
// Prints the test counts of each pass and their total; exits non-zero if either pass failed.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const list = (dir) =>
  fs
    .readdirSync(path.join(root, dir))
    .filter((f) => f.endsWith('.test.mjs'))
    .sort()
    .map((f) => `${dir}/${f}`);
// Behaviour suites: the files that wire parties together through the harness.
const wiresParties = (f) => /\b(createPair|securePair|new Net)\b/.test(fs.readFileSync(path.join(root, f), 'utf8'));

const given = process.argv.slice(2);
const passes = [
  { mode: 'none', files: given.length ? given : [...list('test'), ...list('test/interop'), ...list('test/reliability')] },
  { mode: 'values', files: given.length ? given : list('test').filter(wiresParties) },
];

function runPass({ mode, files }) {
  return new Promise((resolve) => {
    console.log(`\n== node --test, callbacks mode '${mode}': ${files.join(' ')}`);
    const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=tap', ...files], {
      cwd: root,
      env: { ...process.env, OTR_TEST_CALLBACKS: mode },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const counts = {};
    let tail = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      const text = tail + chunk.toString('utf8');
      const lines = text.split('\n');
      tail = lines.pop();
      for (const line of lines) {
        const m = /^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line);
        if (m) counts[m[1]] = Number(m[2]);
      }
    });
    child.on('close', (code, signal) => resolve({ mode, code: code ?? 1, signal, counts }));
  });
}

const results = [];
for (const pass of passes) results.push(await runPass(pass));
console.log('');
for (const r of results) {
  const c = r.counts;
  console.log(
    `== mode '${r.mode}': ${c.tests ?? '?'} tests, ${c.pass ?? '?'} passed, ${c.fail ?? '?'} failed, ${c.cancelled ?? 0} cancelled, ${c.skipped ?? 0} skipped${r.code ? ` (exit ${r.code}${r.signal ? `, ${r.signal}` : ''})` : ''}`,
  );
}
// Both passes together, in the plain form any CI reads: 'N passed, N failed, N skipped'.
const total = (key) => results.reduce((sum, r) => sum + (r.counts[key] ?? 0), 0);
const failedPasses = results.filter((r) => r.code !== 0 && !r.counts.fail).length;
console.log(`tests: ${total('pass')} passed, ${total('fail') + total('cancelled') + failedPasses} failed, ${total('skipped')} skipped`);
process.exit(results.some((r) => r.code !== 0) ? 1 : 0);
