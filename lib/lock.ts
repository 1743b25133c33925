// The advisory lock on a file set. An OTR instance holds it from its constructor until
// close(): libotr rewrites whole files, so two writers of one set would silently undo each
// other's changes. One "<file>.lock" beside each of the three files (the files themselves are
// replaced by rename on every write, so they cannot carry the lock).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ErrorCodes, OtrError, fromNative, type OtrErrorCode } from './errors';
import { lockFile, unlockFile } from './native';

/** The lock file that guards `file`. */
export function lockPathOf(file: string): string {
  return `${path.resolve(file)}.lock`;
}

/**
 * The process holding a flock() on `lockPath`, from /proc/locks (Linux), or undefined when
 * it cannot be told (the file is gone, /proc is not mounted, or nobody holds it).
 */
export function lockHolder(lockPath: string): number | undefined {
  try {
    const st = fs.statSync(lockPath);
    const major = Math.floor(st.dev / 256) & 0xfff;
    const minor = (st.dev & 0xff) | ((Math.floor(st.dev / 4096) & 0xfff00) >>> 0);
    const device = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
    for (const line of fs.readFileSync('/proc/locks', 'utf8').split('\n')) {
      const fields = line.trim().split(/\s+/);
      // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
      if (fields[1] === 'FLOCK' && fields[5] === device) return Number(fields[4]);
    }
  } catch {
    // No holder to name: the message says so.
  }
  return undefined;
}

/** Why `file` cannot be locked, in a message that says what to do. */
export function lockedMessage(file: string): string {
  const lockPath = lockPathOf(file);
  const holder = lockHolder(lockPath);
  const who =
    holder === undefined
      ? 'another OTR instance'
      : holder === process.pid
        ? 'another OTR instance in this process'
        : `another OTR instance (process ${holder})`;
  return (
    `${file} is in use by ${who}, which holds ${lockPath}: two instances writing one file set ` +
    'would overwrite each other. Close that instance first (one OTR per file set); to only read ' +
    'the files, read a copy of them'
  );
}

/** A file of the set, with the error code that reports a problem with it. */
export interface LockedFile {
  file: string;
  code: OtrErrorCode;
}

const { EACCES, EROFS, EPERM } = os.constants.errno;

function lockOne(file: string, code: OtrErrorCode): number | undefined {
  const lockPath = lockPathOf(file);
  try {
    return lockFile(lockPath);
  } catch (error) {
    const failure = fromNative(error);
    if (failure.code === ErrorCodes.LOCKED) throw new OtrError(ErrorCodes.LOCKED, lockedMessage(file));
    if (failure.code !== ErrorCodes.LOCK) throw failure; // the addon itself did not load
    const errno = (error as { errno?: unknown })?.errno;
    if (errno === EROFS || errno === EACCES || errno === EPERM) return undefined;
    throw new OtrError(code, `${file}: ${failure.message}`, { cause: error });
  }
}

/** The locks an OTR instance holds on its files; release() is idempotent. */
export class FileSetLock {
  #fds: number[];

  private constructor(fds: number[]) {
    this.#fds = fds;
  }

  /**
   * Locks every file of the set, or none: throws ERR_OTR_LOCKED when one is held. A lock file
   * this process may not open or create (a read-only directory, another user's lock file it
   * cannot read) is skipped: such a process cannot replace files there either, or shares the
   * directory without sharing the lock, which docs/INTERPRETATION.md tells operators to avoid.
   * Any other failure is the file's own error code (its directory is missing or is not a
   * directory, or the lock file is not a regular file), as reading the file would be.
   */
  static acquire(files: readonly LockedFile[]): FileSetLock {
    const fds: number[] = [];
    const seen = new Set<string>();
    try {
      for (const { file, code } of files) {
        const resolved = path.resolve(file);
        if (seen.has(resolved)) continue;
        seen.add(resolved);
        const fd = lockOne(resolved, code);
        if (fd !== undefined) fds.push(fd);
      }
    } catch (error) {
      for (const fd of fds) unlockFile(fd);
      throw error;
    }
    return new FileSetLock(fds);
  }

  release(): void {
    const fds = this.#fds;
    this.#fds = [];
    for (const fd of fds) unlockFile(fd);
  }
}
