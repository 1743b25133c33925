// Docs that cannot drift: the error codes the documentation names against the codes the code
// has. The tables stay hand-written (each row says when a code comes, in more words than the
// TSDoc of ErrorCodes) and this test keeps them whole: docs/API.md's table lists every
// ErrorCodes value and nothing else, docs/CLI.md's table every code of the CLI with its exit
// code, and no code named in the README, docs/, examples/ or lib/ is one that does not exist.
// Adding a code means adding its row; removing one means removing every mention.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes } from 'protocol-otr';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (file) => fs.readFileSync(path.join(root, file), 'utf8');
// The CLI's own codes are not exported by the package: its built module has them.
const { CliCodes, Exit } = createRequire(import.meta.url)('../dist/cli/errors.js');

const CODE = /ERR_OTR_[A-Z_]+/g;
const libraryCodes = new Set(Object.values(ErrorCodes));
const cliCodes = new Set(Object.values(CliCodes));

// The rows of the markdown table under `heading` (up to the next heading of its level or
// above), each as its cells.
function tableRows(file, heading) {
  const lines = read(file).split('\n');
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `${file} has a "${heading}" section`);
  const level = heading.match(/^#+/)[0].length;
  const rows = [];
  for (const line of lines.slice(start + 1)) {
    const h = /^(#+) /.exec(line);
    if (h && h[1].length <= level) break;
    if (!line.startsWith('|') || /^\|[-| :]+\|$/.test(line)) continue;
    rows.push(
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim()),
    );
  }
  return rows;
}

function filesUnder(dir, ext) {
  return fs
    .readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && ext.some((e) => entry.name.endsWith(e)))
    .map((entry) => path.relative(root, path.join(entry.parentPath ?? entry.path, entry.name)));
}

test("docs/API.md's error-code table lists every ErrorCodes code, and no code that does not exist", () => {
  const rows = tableRows('docs/API.md', '## Error codes').slice(1); // the header row
  const listed = rows.flatMap((cells) => cells[0].match(CODE) ?? []);
  assert.equal(new Set(listed).size, listed.length, `a code listed twice: ${listed}`);
  assert.deepEqual(
    [...libraryCodes].filter((code) => !listed.includes(code)),
    [],
    'ErrorCodes values missing from the table',
  );
  assert.deepEqual(
    listed.filter((code) => !libraryCodes.has(code)),
    [],
    'codes in the table that ErrorCodes does not have',
  );
  for (const cells of rows) assert.ok(cells[1]?.length > 0, `a row says when its code comes: ${cells.join(' | ')}`);
});

test("docs/CLI.md's exit-code table gives every CLI code with its exit code", () => {
  const rows = tableRows('docs/CLI.md', '## Exit codes').slice(1);
  const byCode = new Map(rows.flatMap((cells) => (cells[1].match(/^`(ERR_OTR_CLI_[A-Z_]+)`$/) ? [[cells[1].slice(1, -1), Number(cells[0])]] : [])));
  for (const [name, code] of Object.entries(CliCodes)) {
    assert.equal(byCode.get(code), Exit[name], `${code} documented with exit code ${Exit[name]}`);
  }
  assert.deepEqual(
    [...byCode.keys()].filter((code) => !cliCodes.has(code)),
    [],
    'CLI codes in the table that do not exist',
  );
});

test('every ERR_OTR_ code named in the README, docs/, examples/ and lib/ exists', () => {
  const files = ['README.md', ...filesUnder('docs', ['.md']), ...filesUnder('examples', ['.mjs', '.js', '.ts']), ...filesUnder('lib', ['.ts'])];
  const unknown = [];
  for (const file of files) {
    for (const code of read(file).match(CODE) ?? []) {
      if (!libraryCodes.has(code) && !cliCodes.has(code)) unknown.push(`${file}: ${code}`);
    }
  }
  assert.ok(files.length > 10, `the files were found: ${files.length}`);
  assert.deepEqual(unknown, []);
});
