// import: an existing client's OTR files become this file set. Pidgin, irssi-otr and BitlBee
// all use libotr, so the formats are ours; only the names and places differ.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes } from '../errors';
import { FileSetLock } from '../lock';
import { writeFileAtomically } from '../store-files';
import { CliError, Exit } from './errors';
import { type FileSet, withSnapshot } from './fileset';

export const CLIENTS = ['pidgin', 'irssi', 'bitlbee'] as const;
export type Client = (typeof CLIENTS)[number];

/**
 * Where each client keeps its files:
 * - Pidgin (libpurple): otr.private_key, otr.fingerprints, otr.instance_tags in ~/.purple;
 * - irssi-otr: otr.key, otr.fp, otr.instag in ~/.irssi/otr (given ~/.irssi or its otr/);
 * - BitlBee: <nick>.otr_keys, <nick>.otr_fprints, <nick>.otr_instags per user, in its
 *   configuration directory (/var/lib/bitlbee).
 */
export function clientFiles(client: Client, dir: string, user?: string): FileSet {
  const at = (name: string) => path.resolve(dir, name);
  switch (client) {
    case 'pidgin':
      return { privkeysFile: at('otr.private_key'), contactsFile: at('otr.fingerprints'), instanceTagsFile: at('otr.instance_tags') };
    case 'irssi': {
      const base = fs.existsSync(path.join(dir, 'otr', 'otr.key')) ? path.join(dir, 'otr') : dir;
      return {
        privkeysFile: path.resolve(base, 'otr.key'),
        contactsFile: path.resolve(base, 'otr.fp'),
        instanceTagsFile: path.resolve(base, 'otr.instag'),
      };
    }
    case 'bitlbee':
      if (!user) throw new CliError(Exit.USAGE, 'import --from bitlbee needs --user <nick>: BitlBee keeps one set of files per user');
      if (user.includes('/') || user.startsWith('.')) throw new CliError(Exit.USAGE, `not a BitlBee nick: '${user}'`);
      return { privkeysFile: at(`${user}.otr_keys`), contactsFile: at(`${user}.otr_fprints`), instanceTagsFile: at(`${user}.otr_instags`) };
  }
}

export interface ImportResult {
  from: FileSet;
  to: FileSet;
  accounts: { account: string; protocol: string; fingerprint: string }[];
  fingerprints: number;
}

/**
 * Checks that libotr loads the client's files, then writes them as the target set (each
 * through a temporary file, fsynced and renamed, mode 0600) while holding the target's lock.
 * A target that already has any of the three files is refused: merging two identities'
 * files is not something to do silently.
 */
export async function importFiles(client: Client, from: FileSet, to: FileSet): Promise<ImportResult> {
  if (!fs.existsSync(from.privkeysFile)) {
    throw new CliError(Exit.NOT_FOUND, `no ${client} key file at ${from.privkeysFile}`);
  }
  const found = await withSnapshot(from, (otr) => ({
    accounts: otr.accounts().map((a) => ({ account: a.name, protocol: a.protocol, fingerprint: a.fingerprint })),
    fingerprints: otr.accounts().reduce((n, a) => n + a.contacts().reduce((m, c) => m + c.fingerprints().length, 0), 0),
  }));
  let lock: FileSetLock;
  try {
    lock = FileSetLock.acquire(Object.values(to).map((file) => ({ file, code: ErrorCodes.PRIVKEY_FILE })));
  } catch (error) {
    throw new CliError(Exit.LOCKED, `refused: ${(error as Error).message}`);
  }
  try {
    for (const file of Object.values(to)) {
      if (fs.existsSync(file)) {
        throw new CliError(Exit.FAILURE, `refused: ${file} already exists; import only into a directory without OTR files (move them away first)`);
      }
    }
    for (const key of ['privkeysFile', 'contactsFile', 'instanceTagsFile'] as const) {
      if (!fs.existsSync(from[key])) continue;
      const bytes = fs.readFileSync(from[key]);
      writeFileAtomically(to[key], bytes);
      bytes.fill(0); // the private key's bytes
    }
  } finally {
    lock.release();
  }
  return { from, to, ...found };
}
