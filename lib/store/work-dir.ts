// A node's private working directory (mode 0700) under a shared parent, where PostgresStore
// writes the files the engine reads, a copy of the private key among them. A process killed
// with -9 (or by the OOM killer) cannot remove it; the next store opened under the same
// parent removes every such directory whose owner is gone. An owner holds a flock() on the
// directory's marker for as long as it lives (the kernel drops it with the process).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lockFile, sweepWorkDirs, unlockFile } from '../native';
import { wipeFile } from './pidgin-files';

const MARKER = 'owner.lock';
const KEY_FILE = 'otr.private_key';

export interface WorkDir {
  readonly path: string;
  /** Wipes the key, removes the directory and lets go of it; idempotent. */
  remove(): void;
}

/** Removes `parent/<prefix>*` directories of this user whose owner is gone; returns them. */
export function sweepDeadWorkDirs(parent: string, prefix: string): string[] {
  // The operator's workDir may be reached through a link (a TMPDIR that is one): resolved
  // once, here; below it the sweep works on descriptors and resolves nothing again, so a
  // directory swapped for a link between its check and its removal leads nowhere else.
  let real: string;
  try {
    real = fs.realpathSync(parent);
  } catch {
    return [];
  }
  return sweepWorkDirs(real, prefix, MARKER, KEY_FILE).map((name) => path.join(parent, name));
}

/** Makes a private directory `parent/<prefix>XXXXXX`, held until remove(). */
export function makeWorkDir(parent: string, prefix: string): WorkDir {
  const dir = fs.mkdtempSync(path.join(parent, prefix));
  let fd: number;
  try {
    // Locked under another name, then renamed: a sweep sees the marker only once it is held.
    fd = lockFile(path.join(dir, `${MARKER}.new`));
    fs.renameSync(path.join(dir, `${MARKER}.new`), path.join(dir, MARKER));
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  let held = true;
  return {
    path: dir,
    remove(): void {
      if (!held) return;
      held = false;
      wipeFile(path.join(dir, KEY_FILE));
      fs.rmSync(dir, { recursive: true, force: true });
      unlockFile(fd);
    },
  };
}
