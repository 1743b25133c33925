// The CLI's commands as --help shows them: the whole list, a group's, or one command's.

/** Every command: its arguments and what it does. */
export const COMMANDS: Record<string, { args: string; about: string }> = {
  'keys list': { args: '', about: 'our accounts and their fingerprints' },
  'keys fingerprint': { args: '<account> <protocol>', about: "one account's fingerprint" },
  'keys generate': { args: '<account> <protocol>', about: "make the account's key if it has none" },
  'trust list': { args: '[--account A] [--protocol P]', about: "contacts' fingerprints and our trust in them" },
  'trust verify': { args: '<account> <protocol> <contact> <fingerprint>', about: 'trust the fingerprint (adds it if new)' },
  'trust distrust': { args: '<account> <protocol> <contact> <fingerprint>', about: 'remove the trust' },
  'trust forget': { args: '<account> <protocol> <contact> <fingerprint>', about: 'drop the fingerprint' },
  import: { args: '--from pidgin|irssi|bitlbee <dir> [--user <nick>]', about: "take over a client's files" },
  'db import': { args: '--db <url> [--prefix otr_]', about: 'copy the file set into a PostgreSQL store' },
  'db export': { args: '--db <url> [--prefix otr_]', about: 'write a PostgreSQL store out as the file set' },
};

/** The commands that take an action word after them. */
export const GROUPS = ['keys', 'trust', 'db'];

const OPTIONS = `options:
  --dir <dir>            the file set's directory (default: .), with libotr's names; it must exist
  --privkeys <file>      --fingerprints <file>      --instags <file>    other names
  --force                go on when lines of a file cannot be read (they are still reported)
  --json                 machine-readable output on stdout
  --version              the package's version
  -h, --help             this text; after a command, that command's`;

const EXIT_CODES = `exit codes: 0 done, 1 failed (a file, the database or libotr: the error's code says which),
2 wrong command line (a --dir that is not a directory too), 3 refused: a bridge holds the
files' lock, 4 not found, 5 refused: the import target has OTR files, 6 lines of a file
could not be read (without --force). Reading commands work while a bridge runs.`;

function lines(names: string[]): string {
  const rows = names.map((name) => [`${name} ${COMMANDS[name].args}`.trim(), COMMANDS[name].about]);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`).join('\n');
}

/** The whole usage: every command, the options, the exit codes. */
export const USAGE = `usage: protocol-otr <command> [options]

${lines(Object.keys(COMMANDS))}

${OPTIONS}

${EXIT_CODES}`;

/** The commands of one group (`keys`), for `protocol-otr keys` and `protocol-otr keys --help`. */
export function groupUsage(group: string): string {
  const names = Object.keys(COMMANDS).filter((name) => name.startsWith(`${group} `));
  return `usage: protocol-otr ${group} <${names.map((n) => n.slice(group.length + 1)).join('|')}> [options]

${lines(names)}

${OPTIONS}`;
}

/** One command's usage. */
export function commandUsage(name: string): string {
  return `usage: protocol-otr ${name} ${COMMANDS[name].args} [options]`.replace(/ +/g, ' ') + `\n\n  ${COMMANDS[name].about}\n\n${OPTIONS}\n\n${EXIT_CODES}`;
}
