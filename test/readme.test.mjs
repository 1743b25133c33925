// The README's code, run as it stands, so it cannot rot. Each ```js or ```ts block carries a
// marker on the line before it:
//   <!-- run -->         a complete program: run in a fresh app folder (real libotr, real files);
//                        an <!-- output --> block after it is what it must print
//   <!-- run: irc -->    the bridge skeleton: run against test/helpers/readme-irc.mjs, a
//                        connection whose one user is a second protocol-otr instance
//   <!-- typecheck -->   TypeScript: compiled with the README's <!-- tsconfig --> block
//   <!-- fragment -->    one call in the setting of the programs above: checked for syntax only
// A block without one fails the first test. Also checked: the facts the README repeats from
// elsewhere (error codes, the Node version of `engines`, the packages of a source build).
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ErrorCodes } from 'protocol-otr';
import { REPO, T, assertCleanExit, closeAll, runNode, tmpdir } from './helpers/harness.mjs';

after(closeAll);

const README = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
const MARKERS = ['run', 'run: irc', 'typecheck', 'fragment', 'output', 'tsconfig'];

// Every fenced block: { lang, code, marker, line } (marker: the HTML comment right before it).
function fencedBlocks(markdown) {
  const lines = markdown.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && l === '```');
    assert.notEqual(end, -1, `README.md:${i + 1}: a code block that never closes`);
    let before = i - 1;
    while (before >= 0 && lines[before].trim() === '') before--;
    const marker = /^<!-- (.*) -->$/.exec(lines[before] ?? '')?.[1];
    blocks.push({ lang: open[1], code: lines.slice(i + 1, end).join('\n') + '\n', marker, line: i + 1 });
    i = end;
  }
  return blocks;
}

const BLOCKS = fencedBlocks(README);
const only = (marker) => BLOCKS.filter((b) => b.marker === marker);
const one = (marker) => {
  const found = only(marker);
  assert.equal(found.length, 1, `one <!-- ${marker} --> block in README.md, found ${found.length}`);
  return found[0];
};

// A fresh app folder with protocol-otr installed (a link to this checkout), as after npm install.
function appFolder(files = {}) {
  const dir = tmpdir('otr-readme-app-');
  fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
  fs.symlinkSync(REPO, path.join(dir, 'node_modules', 'protocol-otr'), 'dir');
  fs.symlinkSync(path.join(REPO, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'), 'dir');
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

test('every JavaScript and TypeScript block of the README says whether it runs', () => {
  const code = BLOCKS.filter((b) => ['js', 'mjs', 'cjs', 'ts', 'mts'].includes(b.lang));
  assert.ok(code.length >= 5, `README.md has ${code.length} code blocks`);
  for (const b of code) {
    assert.ok(
      ['run', 'run: irc', 'typecheck', 'fragment'].includes(b.marker),
      `README.md:${b.line}: a ${b.lang} block without <!-- run -->, <!-- run: irc -->, <!-- typecheck --> or <!-- fragment --> before it`,
    );
  }
  for (const b of BLOCKS) if (b.marker !== undefined) assert.ok(MARKERS.includes(b.marker), `README.md:${b.line}: unknown marker <!-- ${b.marker} -->`);
  const runs = only('run');
  assert.ok(runs.length >= 1);
  for (const b of only('output'))
    assert.ok(
      runs.some((r) => r.line < b.line),
      `README.md:${b.line}: an output block with no program before it`,
    );
});

test("the README's first program runs and prints what the README shows, on the first run and with the keys it made", T, async () => {
  const program = one('run');
  const expected = BLOCKS.find((b) => b.marker === 'output' && b.line > program.line).code;
  const dir = appFolder({ 'first.mjs': program.code });
  for (const run of ['first', 'second']) {
    const result = await runNode(path.join(dir, 'first.mjs'), [], { cwd: dir });
    assertCleanExit(result, 0, `${run} run`);
    assert.equal(result.stderr, '', `${run} run: nothing on stderr`);
    assert.equal(result.stdout, expected, `${run} run prints the README's output`);
  }
  for (const who of ['alice', 'bob']) {
    assert.equal(fs.statSync(path.join(dir, who, 'otr.private_key')).mode & 0o777, 0o600, `${who}'s key is 0600`);
  }
});

test(
  "the README's bridge skeleton: a line arriving during shutdown reaches no reader, the contact gets the disconnect, nothing is written after the end",
  T,
  async () => {
    const skeleton = one('run: irc');
    const dir = appFolder({ 'bridge.mjs': skeleton.code });
    const result = await runNode(path.join(dir, 'bridge.mjs'), [], {
      cwd: dir,
      flags: ['--import', path.join(REPO, 'test', 'helpers', 'readme-irc.mjs')],
    });
    assertCleanExit(result, 0, 'bridge');
    assert.equal(result.stderr, '', 'no rejection reported, none unhandled, no warning');
    const lines = result.stdout.trim().split('\n');
    assert.ok(lines.includes('alice: encrypted'), result.stdout);
    assert.ok(lines.includes('alice (unverified): hello bridge'), 'the line read before the shutdown is delivered');
    assert.equal(lines.at(-1), '[irc] alice: Finished, 1 line(s) during shutdown, 0 read by the bridge, ended');
    assert.equal(fs.statSync(path.join(dir, 'otr-keys')).mode & 0o777, 0o700);
  },
);

test("the README's TypeScript example type-checks with the README's tsconfig.json", T, () => {
  const tsconfig = JSON.parse(one('tsconfig').code);
  assert.deepEqual(tsconfig.compilerOptions.types, ['node'], 'the tsconfig names @types/node');
  const dir = appFolder({
    'package.json': JSON.stringify({ type: 'module' }),
    'tsconfig.json': JSON.stringify(tsconfig),
    'app.ts': one('typecheck').code,
  });
  const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  const good = spawnSync(process.execPath, [tsc, '-p', dir, '--noEmit'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(good.status, 0, `tsc:\n${good.stdout}${good.stderr}`);
  // The check is real: the same setup refuses a wrong use.
  fs.appendFileSync(path.join(dir, 'app.ts'), 'const n: number = account.fingerprint;\nvoid n;\n');
  const bad = spawnSync(process.execPath, [tsc, '-p', dir, '--noEmit'], { encoding: 'utf8', timeout: 120_000 });
  assert.notEqual(bad.status, 0, 'tsc refuses a string assigned to a number');
  assert.match(bad.stdout, /TS2322/);
});

test("the README's fragments are valid JavaScript", T, () => {
  const fragments = only('fragment');
  assert.ok(fragments.length >= 3);
  const dir = tmpdir('otr-readme-fragments-');
  for (const b of fragments) {
    const file = path.join(dir, `line-${b.line}.mjs`);
    fs.writeFileSync(file, b.code);
    const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8' });
    assert.equal(check.status, 0, `README.md:${b.line}:\n${check.stderr}`);
  }
});

test('the README names only real error codes, the Node version of engines, and every package the source build checks', () => {
  for (const [code] of README.matchAll(/ERR_OTR_[A-Z_]+/g)) {
    assert.ok(Object.values(ErrorCodes).includes(code), `README.md names ${code}, which lib/errors.ts does not have`);
  }
  const { engines } = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  const version = /^>=(\d+\.\d+)$/.exec(engines.node)?.[1];
  assert.ok(version, `engines.node is ${engines.node}`);
  assert.ok(README.includes(`Node.js ${version} or newer`), `README.md says Node.js ${version} or newer`);
  assert.doesNotMatch(README, /Node\.js \d+ or newer/, 'no Node version other than engines');
  const checks = fs.readFileSync(path.join(REPO, 'scripts', 'check-build-deps.cjs'), 'utf8');
  for (const [, line] of checks.matchAll(/^const (?:DEBIAN|ALPINE) = '[^:]+: (.*)';$/gm)) {
    assert.ok(README.includes(line), `README.md gives the source build's packages as the check does: ${line}`);
  }
});
