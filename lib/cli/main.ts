#!/usr/bin/env node
// protocol-otr: the operator's command line over a bridge's OTR files (docs/CLI.md).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { keysFingerprint, keysGenerate, keysList, trustChange, trustList, type TrustChange } from './commands';
import { databaseTransfer } from './database';
import { type CliError, Exit, asCliError, usageError, type ExitCode, type SkippedLine } from './errors';
import { fileSetFrom, refuseSkipped, type WithSkipped } from './fileset';
import { CLIENTS, clientFiles, importFiles, type Client } from './import';
import { COMMANDS, GROUPS, USAGE, commandUsage, groupUsage } from './usage';

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
  force: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  version: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Values = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw usageError(`${(error as Error).message}\n\n${USAGE}`);
  }
}

function positionals(args: string[], count: number, what: string): string[] {
  if (args.length !== count) throw usageError(`expected ${what}`);
  return args;
}

// What a command printed: `result` for --json, `text` for people, and the lines it skipped.
interface Output {
  result: unknown;
  text: string;
  skipped: SkippedLine[];
}

const output = <T>({ value, skipped }: WithSkipped<T>, text: (value: T) => string): Output => ({ result: value, text: text(value), skipped });

function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}

// The usage --help asks for: the command's, its group's, or the whole list.
function help(name: string | undefined, group: string | undefined): string {
  if (name !== undefined && COMMANDS[name]) return commandUsage(name);
  if (group !== undefined && GROUPS.includes(group)) return groupUsage(group);
  return USAGE;
}

async function run(values: Values, words: string[]): Promise<Output> {
  const [group, action, ...args] = words;
  const name = group === 'import' || action === undefined ? group : `${group} ${action}`;
  if (values.version) {
    const version = packageVersion();
    return { result: { version }, text: version, skipped: [] };
  }
  if (values.help) {
    const usage = help(name, group);
    return { result: { usage }, text: usage, skipped: [] };
  }
  if (group === undefined) throw usageError(`a command is needed\n\n${USAGE}`);
  if (GROUPS.includes(group) && action === undefined) {
    const actions = Object.keys(COMMANDS)
      .filter((n) => n.startsWith(`${group} `))
      .map((n) => n.slice(group.length + 1));
    throw usageError(`${group} needs one of: ${actions.join(', ')}\n\n${groupUsage(group)}`);
  }
  const force = values.force;
  switch (name) {
    case 'keys list': {
      positionals(args, 0, 'no arguments');
      return output(await keysList(fileSetFrom(values)), (rows) => rows.map((r) => `${r.account}\t${r.protocol}\t${r.fingerprint}`).join('\n'));
    }
    case 'keys fingerprint': {
      const [account, protocol] = positionals(args, 2, '<account> <protocol>');
      return output(await keysFingerprint(fileSetFrom(values), account, protocol), (row) => row.fingerprint);
    }
    case 'keys generate': {
      const [account, protocol] = positionals(args, 2, '<account> <protocol>');
      return output(
        await keysGenerate(fileSetFrom(values), force, account, protocol),
        (row) => `${row.created ? 'generated' : 'already had a key'}: ${row.account}\t${row.protocol}\t${row.fingerprint}`,
      );
    }
    case 'trust list': {
      positionals(args, 0, 'no arguments (filter with --account and --protocol)');
      return output(await trustList(fileSetFrom(values), { account: values.account, protocol: values.protocol }), (rows) =>
        rows.map((r) => `${r.account}\t${r.protocol}\t${r.contact}\t${r.fingerprint}\t${r.verified ? r.trust : 'untrusted'}`).join('\n'),
      );
    }
    case 'trust verify':
    case 'trust distrust':
    case 'trust forget': {
      const [account, protocol, contact, fingerprint] = positionals(args, 4, '<account> <protocol> <contact> <fingerprint>');
      const files = fileSetFrom(values);
      return output(await trustChange(files, force, action as TrustChange, { account, protocol, contact, fingerprint }), (result) =>
        'forgotten' in result
          ? `forgotten: ${contact} ${result.forgotten.fingerprint}`
          : `${result.contact}\t${result.fingerprint}\t${result.verified ? result.trust : 'untrusted'}`,
      );
    }
    case 'import': {
      const [source] = positionals(action === undefined ? [] : [action, ...args], 1, "<dir> (the client's directory)");
      const client = values.from as Client;
      if (!CLIENTS.includes(client)) throw usageError(`--from must be one of ${CLIENTS.join(', ')}`);
      const files = fileSetFrom(values);
      return output(await importFiles(client, clientFiles(client, source, values.user), files, force), (result) =>
        [
          ...result.accounts.map((a) => `imported ${a.account}\t${a.protocol}\t${a.fingerprint}`),
          `${result.fingerprints} contact fingerprint(s) into ${files.contactsFile}`,
        ].join('\n'),
      );
    }
    case 'db import':
    case 'db export': {
      positionals(args, 0, 'no arguments (the database is --db, the file set --dir or the file options)');
      if (!values.db) throw usageError('--db <connection string> is required');
      const result = await databaseTransfer(action as 'import' | 'export', values.db, values.prefix, fileSetFrom(values), force);
      return output(result, (counts) =>
        Object.entries(counts)
          .map(([k, v]) => `${k}: ${v}`)
          .join('\n'),
      );
    }
    default:
      throw usageError(`unknown command '${name}'\n\n${GROUPS.includes(group) ? groupUsage(group) : USAGE}`);
  }
}

function describeSkipped(line: SkippedLine): string {
  const kept = line.originalKeptAs ? `; the file was rewritten without it, the original is kept as ${line.originalKeptAs}` : '';
  return `${line.file} line ${line.line} skipped: ${line.reason}${kept}`;
}

async function main(argv: string[]): Promise<ExitCode> {
  const json = argv.includes('--json');
  let done: Output | undefined;
  let failure: CliError | undefined;
  try {
    const { values, positionals: words } = parse(argv);
    done = await run(values, words);
    // A reading command shows what it could read, and fails for what it could not.
    refuseSkipped(done.skipped, values.force, 'the output shows the rest');
  } catch (error) {
    failure = asCliError(error);
  }
  const skipped = done?.skipped ?? failure?.skipped ?? [];
  for (const line of skipped) process.stderr.write(`protocol-otr: ${describeSkipped(line)}\n`);
  if (json) {
    const error = failure && { message: failure.message, exitCode: failure.exitCode, code: failure.code };
    process.stdout.write(`${JSON.stringify({ ...(done && { result: done.result }), skipped, ...(error && { error }) }, null, 2)}\n`);
  } else if (done && done.text !== '') {
    process.stdout.write(`${done.text}\n`);
  }
  if (failure) process.stderr.write(`protocol-otr: ${failure.message}\n`);
  return failure?.exitCode ?? Exit.OK;
}

// main reports every failure itself: a rejection here would be a bug, left to crash with its stack.
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
