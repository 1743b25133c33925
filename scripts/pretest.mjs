// Runs before `npm test`: builds what the tests load, cheaply when nothing changed, so a stale
// build can never pass or fail in place of the code in the tree.
//   - The contract: src-native/contract.h and lib/native-contract.ts made again from
//     src-native/contract.json (written only when they change; CI checks they were committed).
//   - TypeScript: tsc --incremental (its state lives in dist/, so removing dist/ rebuilds all).
//   - The addon: node-gyp, only when binding.gyp or a file under src-native/ is newer than
//     build/Release/protocol_otr.node (configure too when binding.gyp changed). Skipped when
//     PROTOCOL_OTR_ADDON points the tests at another build (scripts/asan-test.sh).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const run = (script, args) => execFileSync(process.execPath, [script, ...args], { cwd: root, stdio: 'inherit' });
const mtime = (p) => (fs.existsSync(p) ? fs.statSync(p).mtimeMs : -Infinity);

run(path.join(root, 'scripts', 'contract.mjs'), []);

const buildInfo = path.join(root, 'dist', '.tsbuildinfo');
if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) fs.rmSync(buildInfo, { force: true });
run(require.resolve('typescript/bin/tsc'), ['-p', 'tsconfig.json', '--incremental', '--tsBuildInfoFile', buildInfo]);

if (!process.env.PROTOCOL_OTR_ADDON) {
  const addon = path.join(root, 'build', 'Release', 'protocol_otr.node');
  const gyp = path.join(root, 'binding.gyp');
  const native = path.join(root, 'src-native');
  const sources = [gyp, ...fs.readdirSync(native, { recursive: true }).map((f) => path.join(native, f))];
  const built = mtime(addon);
  const stale = sources.filter((s) => mtime(s) > built);
  if (stale.length > 0) {
    const configured = mtime(path.join(root, 'build', 'Makefile')) >= mtime(gyp);
    console.log(`pretest: rebuilding the addon (${stale.length} source file(s) newer than the build)`);
    run(require.resolve('node-gyp/bin/node-gyp.js'), [configured ? 'build' : 'rebuild']);
  }
}
