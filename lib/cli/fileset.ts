// The file set a command works on, and the two ways the CLI opens it: a snapshot for reading
// (works while a bridge holds the lock) and the files themselves for writing (takes the lock).
// Both report the lines of the fingerprints file that could not be read, under the file's
// real name.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCodes, OtrError, type OtrErrorCode } from '../errors';
import { OTR } from '../otr';
import { CliCodes, CliError, Exit, usageError, type SkippedLine } from './errors';

export interface FileSet {
  privkeysFile: string;
  contactsFile: string;
  instanceTagsFile: string;
}

/** What a command made, and the lines it had to skip to make it. */
export interface WithSkipped<T> {
  value: T;
  skipped: SkippedLine[];
}

const FILE_CODES: Record<keyof FileSet, OtrErrorCode> = {
  privkeysFile: ErrorCodes.PRIVKEY_FILE,
  contactsFile: ErrorCodes.FINGERPRINTS_FILE,
  instanceTagsFile: ErrorCodes.INSTAG_FILE,
};

/**
 * --dir (default: the current directory) with libotr's names, each overridable. A --dir
 * that does not exist or is not a directory is a wrong command line (a typo would otherwise
 * read as an empty file set), and so is a file option in a directory that does not exist.
 */
export function fileSetFrom(options: { dir?: string; privkeys?: string; fingerprints?: string; instags?: string }): FileSet {
  if (options.dir !== undefined) requireDirectory(options.dir, `--dir ${options.dir}`);
  const dir = options.dir ?? '.';
  const files = {
    privkeysFile: path.resolve(options.privkeys ?? path.join(dir, 'otr.private_key')),
    contactsFile: path.resolve(options.fingerprints ?? path.join(dir, 'otr.fingerprints')),
    instanceTagsFile: path.resolve(options.instags ?? path.join(dir, 'otr.instance_tags')),
  };
  for (const [option, given] of [
    ['--privkeys', options.privkeys],
    ['--fingerprints', options.fingerprints],
    ['--instags', options.instags],
  ]) {
    if (given !== undefined) requireDirectory(path.dirname(path.resolve(given)), `${option} ${given}: its directory ${path.dirname(path.resolve(given))}`);
  }
  return files;
}

function requireDirectory(dir: string, what: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw usageError(`${what} does not exist (create it first: mkdir -p '${dir}')`);
  }
  if (!stat.isDirectory()) throw usageError(`${what} is not a directory`);
}

// A private view of the files as they are now: hard links (no copy of the key's bytes) in a
// fresh 0700 directory, or copies where links cannot be made (another filesystem). The
// bridge replaces files by rename, so a link keeps the version it pointed to.
function snapshotOf(files: FileSet): { dir: string; files: FileSet } {
  const names = { privkeysFile: 'otr.private_key', contactsFile: 'otr.fingerprints', instanceTagsFile: 'otr.instance_tags' };
  const candidates = [os.tmpdir(), path.dirname(files.privkeysFile)];
  let lastError: unknown;
  let failing: keyof FileSet | undefined;
  for (const [i, parent] of candidates.entries()) {
    let dir: string | undefined;
    failing = undefined;
    try {
      dir = fs.mkdtempSync(path.join(parent, '.protocol-otr-read-'));
      const copy = {} as FileSet;
      for (const key of Object.keys(names) as (keyof FileSet)[]) {
        failing = key;
        const target = path.join(dir, names[key]);
        copy[key] = target;
        if (!fs.existsSync(files[key])) continue;
        try {
          fs.linkSync(files[key], target);
        } catch (error) {
          if (i < candidates.length - 1) throw error; // try beside the files, where a link works
          fs.copyFileSync(files[key], target);
          fs.chmodSync(target, 0o600);
        }
      }
      return { dir, files: copy };
    } catch (error) {
      lastError = error;
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const what = failing ? files[failing] : path.dirname(files.privkeysFile);
  throw new CliError(Exit.FAILURE, failing ? FILE_CODES[failing] : ErrorCodes.FILE_WRITE, `cannot read ${what}: ${(lastError as Error).message}`);
}

// An OTR over `files` whose later 'error' events are kept (not process warnings): each line
// the load skipped is emitted once, right after the constructor; anything else is a failure.
function openReporting(files: FileSet): { otr: OTR; failures: OtrError[] } {
  const otr = new OTR(files);
  const failures: OtrError[] = [];
  let announced = otr.loadReport.skipped.length;
  otr.on('error', (error) => {
    if (announced > 0) announced--;
    else failures.push(error);
  });
  return { otr, failures };
}

function skippedBy(otr: OTR, realFile: string, rewritten: boolean): SkippedLine[] {
  const keptAs = rewritten ? otr.loadReport.copies[0] : undefined;
  return otr.loadReport.skipped.map(({ line, reason }) => ({ file: realFile, line, reason, ...(keptAs ? { originalKeptAs: keptAs } : {}) }));
}

/** Runs `read` over a snapshot of the files; never takes their lock, never writes them. */
export async function withSnapshot<T>(files: FileSet, read: (otr: OTR) => T | Promise<T>): Promise<WithSkipped<T>> {
  const snapshot = snapshotOf(files);
  try {
    const { otr, failures } = openReporting(snapshot.files);
    let value: T;
    try {
      value = await read(otr);
    } finally {
      await otr.close();
    }
    if (failures.length > 0) throw failures[0];
    return { value, skipped: skippedBy(otr, files.contactsFile, false) };
  } catch (error) {
    throw withOriginalPaths(error, snapshot.files, files);
  } finally {
    fs.rmSync(snapshot.dir, { recursive: true, force: true });
  }
}

/**
 * Refuses to go on over skipped lines unless `force`: the lines are listed, and `done` says
 * what was (not) done.
 */
export function refuseSkipped(skipped: SkippedLine[], force: boolean, done: string): void {
  if (skipped.length === 0 || force) return;
  const lines = skipped.length === 1 ? '1 line' : `${skipped.length} lines`;
  const them = skipped.length === 1 ? 'it' : 'them';
  throw new CliError(
    Exit.SKIPPED,
    CliCodes.SKIPPED,
    `${lines} of ${skipped[0].file} could not be read (listed above); ${done}. Correct or remove ${them}, ` +
      `or run the command again with --force to go on without ${them}`,
    { skipped },
  );
}

/**
 * Runs `write` with the files open (and locked); refused while a bridge holds them. Lines the
 * load would skip are checked first on a snapshot: without `force` nothing is opened or
 * written; with it, the library rewrites the file without them and keeps the original.
 */
export async function withFiles<T>(files: FileSet, force: boolean, write: (otr: OTR) => Promise<T>): Promise<WithSkipped<T>> {
  const check = await withSnapshot(files, () => undefined);
  refuseSkipped(check.skipped, force, 'nothing was written');
  let opened: ReturnType<typeof openReporting>;
  try {
    opened = openReporting(files);
  } catch (error) {
    if (error instanceof OtrError && error.code === ErrorCodes.LOCKED) {
      throw new CliError(
        Exit.LOCKED,
        ErrorCodes.LOCKED,
        `refused: ${error.message}. Changing the files under a running bridge would be lost when it ` +
          'next writes them; stop the bridge, run this command, start it again. Reading commands ' +
          '(keys list, keys fingerprint, trust list) work while it runs.',
        { cause: error },
      );
    }
    throw error;
  }
  const { otr, failures } = opened;
  let value: T;
  try {
    value = await write(otr);
  } finally {
    await otr.close();
  }
  if (failures.length > 0) throw failures[0];
  return { value, skipped: skippedBy(otr, files.contactsFile, true) };
}

function withOriginalPaths(error: unknown, from: FileSet, to: FileSet): unknown {
  if (!(error instanceof OtrError)) return error;
  let message = error.message;
  for (const key of Object.keys(from) as (keyof FileSet)[]) message = message.split(from[key]).join(to[key]);
  return new OtrError(error.code, message, { cause: error });
}
