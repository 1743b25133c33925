// The file set a command works on, and the two ways the CLI opens it: a snapshot for reading
// (works while a bridge holds the lock) and the files themselves for writing (takes the lock).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCodes, OtrError } from '../errors';
import { OTR, type OTROptions } from '../otr';
import { CliError, Exit } from './errors';

export interface FileSet {
  privkeysFile: string;
  contactsFile: string;
  instanceTagsFile: string;
}

/** --dir (default: the current directory) with libotr's names, each overridable. */
export function fileSetFrom(options: { dir?: string; privkeys?: string; fingerprints?: string; instags?: string }): FileSet {
  const dir = options.dir ?? '.';
  return {
    privkeysFile: path.resolve(options.privkeys ?? path.join(dir, 'otr.private_key')),
    contactsFile: path.resolve(options.fingerprints ?? path.join(dir, 'otr.fingerprints')),
    instanceTagsFile: path.resolve(options.instags ?? path.join(dir, 'otr.instance_tags')),
  };
}

// A private view of the files as they are now: hard links (no copy of the key's bytes) in a
// fresh 0700 directory, or copies where links cannot be made (another filesystem). The
// bridge replaces files by rename, so a link keeps the version it pointed to.
function snapshotOf(files: FileSet): { dir: string; files: FileSet } {
  const names = { privkeysFile: 'otr.private_key', contactsFile: 'otr.fingerprints', instanceTagsFile: 'otr.instance_tags' };
  const candidates = [os.tmpdir(), path.dirname(files.privkeysFile)];
  let lastError: unknown;
  for (const [i, parent] of candidates.entries()) {
    let dir: string | undefined;
    try {
      dir = fs.mkdtempSync(path.join(parent, '.protocol-otr-read-'));
      const copy = {} as FileSet;
      for (const key of Object.keys(names) as (keyof FileSet)[]) {
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
  throw new CliError(Exit.FAILURE, `cannot read ${files.privkeysFile}: ${(lastError as Error).message}`);
}

/** Runs `read` over a snapshot of the files; never takes their lock, never writes them. */
export async function withSnapshot<T>(files: FileSet, read: (otr: OTR) => T | Promise<T>): Promise<T> {
  const snapshot = snapshotOf(files);
  try {
    const otr = new OTR(snapshot.files);
    try {
      return await read(otr);
    } finally {
      await otr.close();
    }
  } catch (error) {
    throw withOriginalPaths(error, snapshot.files, files);
  } finally {
    fs.rmSync(snapshot.dir, { recursive: true, force: true });
  }
}

/** Runs `write` with the files open (and locked); refused while a bridge holds them. */
export async function withFiles<T>(files: FileSet, write: (otr: OTR) => Promise<T>): Promise<T> {
  let otr: OTR;
  try {
    otr = new OTR(files as OTROptions);
  } catch (error) {
    if (error instanceof OtrError && error.code === ErrorCodes.LOCKED) {
      throw new CliError(
        Exit.LOCKED,
        `refused: ${error.message}. Changing the files under a running bridge would be lost when it ` +
          'next writes them; stop the bridge, run this command, start it again. Reading commands ' +
          '(keys list, keys fingerprint, trust list) work while it runs.',
      );
    }
    throw error;
  }
  try {
    return await write(otr);
  } finally {
    await otr.close();
  }
}

function withOriginalPaths(error: unknown, from: FileSet, to: FileSet): unknown {
  if (!(error instanceof OtrError)) return error;
  let message = error.message;
  for (const key of Object.keys(from) as (keyof FileSet)[]) message = message.split(from[key]).join(to[key]);
  return new OtrError(error.code, message, { cause: error });
}
