// clang-format over the C++ (src-native/ and the fuzz harness), with .clang-format's layout:
//   node scripts/format-native.mjs           rewrites the files
//   node scripts/format-native.mjs --check   changes nothing; fails naming each file that differs
// npm run format and npm run format:check run it after Prettier.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const REFERENCE_MAJOR = 14; // Debian 12's clang-format, which CI installs
const root = path.join(import.meta.dirname, '..');
const check = process.argv.includes('--check');

function sources(dir, pattern) {
  return fs
    .readdirSync(path.join(root, dir), { recursive: true })
    .filter((name) => pattern.test(name))
    .map((name) => path.join(dir, name))
    .sort();
}

let version;
try {
  version = execFileSync('clang-format', ['--version'], { encoding: 'utf8' }).trim();
} catch (error) {
  const why = error.code === 'ENOENT' ? 'clang-format is not installed' : `clang-format --version failed: ${error.message}`;
  console.error(`format-native: ${why} (Debian/Ubuntu: apt-get install clang-format; bash scripts/install.sh installs it)`);
  process.exit(1);
}
const major = Number(/version (\d+)/.exec(version)?.[1]);
if (major !== REFERENCE_MAJOR) {
  console.error(
    `format-native: ${version}; the layout is checked with clang-format ${REFERENCE_MAJOR} (Debian 12), and other versions may place a few lines differently`,
  );
}

const files = [...sources('src-native', /\.(cc|h)$/), ...sources('test/fuzz', /\.cc$/)];
const args = check ? ['--dry-run', '--Werror', ...files] : ['-i', ...files];
try {
  execFileSync('clang-format', args, { cwd: root, stdio: 'inherit' });
} catch {
  console.error(`format-native: ${check ? "the files above differ from .clang-format's layout: npm run format rewrites them" : 'clang-format failed'}`);
  process.exit(1);
}
