// A node's private working directory (mode 0700) under a shared parent, where PostgresStore
// writes the files the engine reads, a copy of the private key among them. A process killed
// with -9 (or by the OOM killer) cannot remove it; the next store opened under the same
// parent removes every such directory whose owner is gone. An owner holds a flock() on the
// directory's marker for as long as it lives (the kernel drops it with the process).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lockFile, unlockFile } from './native';
import { wipeFile } from './store-files';

const MARKER = 'owner.lock';
const KEY_FILE = 'otr.private_key';

export interface WorkDir {
  readonly path: string;
  /** Wipes the key, removes the directory and lets go of it; idempotent. */
  remove(): void;
}

/** Removes `parent/<prefix>*` directories of this user whose owner is gone; returns them. */
export function sweepDeadWorkDirs(parent: string, prefix: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const dir = path.join(parent, name);
    const marker = path.join(dir, MARKER);
    try {
      const st = fs.lstatSync(dir);
      // Without a marker the directory is not ours to judge: made before markers existed,
      // or its owner is between making it and holding the marker.
      if (!st.isDirectory() || st.uid !== process.getuid?.() || !fs.existsSync(marker)) continue;
    } catch {
      continue;
    }
    let fd: number;
    try {
      fd = lockFile(marker);
    } catch {
      continue; // held: its owner is alive
    }
    try {
      wipeFile(path.join(dir, KEY_FILE));
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // Left for the next sweep.
    } finally {
      unlockFile(fd);
    }
  }
  return removed;
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
