#!/usr/bin/env node
// protocol-otr: the operator's command line over a bridge's OTR files (docs/CLI.md).
import { parseArgs } from 'node:util';
import { OtrError } from '../errors';
import { keysFingerprint, keysGenerate, keysList, trustChange, trustList, type TrustChange } from './commands';
import { CliError, Exit, type ExitCode } from './errors';
import { fileSetFrom } from './fileset';
import { databaseTransfer } from './database';
import { CLIENTS, clientFiles, importFiles, type Client } from './import';

const USAGE = `usage: protocol-otr <command> [options]

  keys list                                   our accounts and their fingerprints
  keys fingerprint <account> <protocol>       one account's fingerprint
  keys generate <account> <protocol>          make the account's key if it has none
  trust list [--account A] [--protocol P]     contacts' fingerprints and our trust in them
  trust verify <account> <protocol> <contact> <fingerprint>    trust (adds it if new)
  trust distrust <account> <protocol> <contact> <fingerprint>  remove the trust
  trust forget <account> <protocol> <contact> <fingerprint>    drop the fingerprint
  import --from pidgin|irssi|bitlbee <dir> [--user <nick>]    take over a client's files
  db import --db <url> [--prefix otr_]        copy the file set into a PostgreSQL store
  db export --db <url> [--prefix otr_]        write a PostgreSQL store out as the file set

options:
  --dir <dir>            the file set's directory (default: .), with libotr's names
  --privkeys <file>      --fingerprints <file>      --instags <file>    other names
  --json                 machine-readable output on stdout
  -h, --help

exit codes: 0 done, 1 failure, 2 usage, 3 refused (a bridge holds the files' lock),
4 not found. Reading commands work while a bridge runs; the others are refused.`;

const OPTIONS = {
  dir: { type: 'string' },
  privkeys: { type: 'string' },
  fingerprints: { type: 'string' },
  instags: { type: 'string' },
  account: { type: 'string' },
  protocol: { type: 'string' },
  from: { type: 'string' },
  user: { type: 'string' },
  db: { type: 'string' },
  prefix: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new CliError(Exit.USAGE, (error as Error).message);
  }
}

function positionals(args: string[], count: number, what: string): string[] {
  if (args.length !== count) throw new CliError(Exit.USAGE, `expected ${what}`);
  return args;
}

type Output = { json: unknown; text: string };

async function run(argv: string[]): Promise<Output | undefined> {
  const { values, positionals: words } = parse(argv);
  if (values.help || words.length === 0) return { json: { usage: USAGE }, text: USAGE };
  const files = fileSetFrom(values);
  const [group, action, ...args] = words;
  const command = group === 'import' ? group : `${group} ${action ?? ''}`.trim();
  switch (command) {
    case 'keys list': {
      positionals(args, 0, 'no arguments');
      const rows = await keysList(files);
      return { json: rows, text: rows.map((r) => `${r.account}\t${r.protocol}\t${r.fingerprint}`).join('\n') };
    }
    case 'keys fingerprint': {
      const [name, protocol] = positionals(args, 2, '<account> <protocol>');
      const row = await keysFingerprint(files, name, protocol);
      return { json: row, text: row.fingerprint };
    }
    case 'keys generate': {
      const [name, protocol] = positionals(args, 2, '<account> <protocol>');
      const row = await keysGenerate(files, name, protocol);
      return { json: row, text: `${row.created ? 'generated' : 'already had a key'}: ${row.account}\t${row.protocol}\t${row.fingerprint}` };
    }
    case 'trust list': {
      positionals(args, 0, 'no arguments (filter with --account and --protocol)');
      const rows = await trustList(files, { account: values.account, protocol: values.protocol });
      return {
        json: rows,
        text: rows.map((r) => `${r.account}\t${r.protocol}\t${r.contact}\t${r.fingerprint}\t${r.verified ? r.trust : 'untrusted'}`).join('\n'),
      };
    }
    case 'trust verify':
    case 'trust distrust':
    case 'trust forget': {
      const [account, protocol, contact, fingerprint] = positionals(args, 4, '<account> <protocol> <contact> <fingerprint>');
      const result = await trustChange(files, action as TrustChange, { account, protocol, contact, fingerprint });
      const text = 'forgotten' in result ? `forgotten: ${contact} ${result.forgotten.fingerprint}` : `${result.contact}\t${result.fingerprint}\t${result.verified ? result.trust : 'untrusted'}`;
      return { json: result, text };
    }
    case 'import': {
      const [source] = positionals(action === undefined ? [] : [action, ...args], 1, '<dir> (the client\'s directory)');
      const client = values.from as Client;
      if (!CLIENTS.includes(client)) throw new CliError(Exit.USAGE, `--from must be one of ${CLIENTS.join(', ')}`);
      const result = await importFiles(client, clientFiles(client, source, values.user), files);
      const lines = result.accounts.map((a) => `imported ${a.account}\t${a.protocol}\t${a.fingerprint}`);
      lines.push(`${result.fingerprints} contact fingerprint(s) into ${files.contactsFile}`);
      return { json: result, text: lines.join('\n') };
    }
    case 'db import':
    case 'db export': {
      positionals(args, 0, 'no arguments (the database is --db, the file set --dir or the file options)');
      if (!values.db) throw new CliError(Exit.USAGE, '--db <connection string> is required');
      const result = await databaseTransfer(action as 'import' | 'export', values.db, values.prefix, files);
      return { json: result, text: Object.entries(result).map(([k, v]) => `${k}: ${v}`).join('\n') };
    }
    default:
      throw new CliError(Exit.USAGE, `unknown command '${command}'\n\n${USAGE}`);
  }
}

function exitCodeOf(error: unknown): ExitCode {
  return error instanceof CliError ? error.exitCode : Exit.FAILURE;
}

async function main(argv: string[]): Promise<ExitCode> {
  const json = argv.includes('--json');
  try {
    const output = await run(argv);
    if (output) process.stdout.write(`${json ? JSON.stringify(output.json, null, 2) : output.text}\n`.replace(/^\n$/, ''));
    return Exit.OK;
  } catch (error) {
    const code = exitCodeOf(error);
    const message = error instanceof Error ? error.message : String(error);
    const otrCode = error instanceof OtrError ? error.code : undefined;
    if (json) process.stdout.write(`${JSON.stringify({ error: { message, exitCode: code, code: otrCode } }, null, 2)}\n`);
    process.stderr.write(`protocol-otr: ${message}\n`);
    return code;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
