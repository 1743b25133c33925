// import: an existing client's OTR files become this file set. Pidgin, irssi-otr and BitlBee
// all use libotr, so the formats are ours; only the names and places differ.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, OtrError } from '../errors';
import { FileSetLock } from '../lock';
import { writeFileAtomically } from '../store/pidgin-files';
import { CliCodes, CliError, Exit, notFound, usageError } from './errors';
import { type FileSet, type WithSkipped, refuseSkipped, withSnapshot } from './fileset';

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
      if (!user) throw usageError('import --from bitlbee needs --user <nick>: BitlBee keeps one set of files per user');
      if (user.includes('/') || user.startsWith('.')) throw usageError(`not a BitlBee nick: '${user}'`);
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
 * files is not something to do silently. Lines of the client's fingerprints file libotr
 * cannot read refuse the import unless `force` (then they are copied as they are; the
 * bridge's first load leaves them out, keeping the original).
 */
export async function importFiles(client: Client, from: FileSet, to: FileSet, force: boolean): Promise<WithSkipped<ImportResult>> {
  if (!fs.existsSync(from.privkeysFile)) {
    throw notFound(`no ${client} key file at ${from.privkeysFile}`);
  }
  const { value: found, skipped } = await withSnapshot(from, (otr) => ({
    accounts: otr.accounts().map((a) => ({ account: a.name, protocol: a.protocol, fingerprint: a.fingerprint })),
    fingerprints: otr.accounts().reduce((n, a) => n + a.contacts().reduce((m, c) => m + c.fingerprints().length, 0), 0),
  }));
  refuseSkipped(skipped, force, 'nothing was imported');
  let lock: FileSetLock;
  try {
    lock = FileSetLock.acquire([
      { file: to.privkeysFile, code: ErrorCodes.PRIVKEY_FILE },
      { file: to.contactsFile, code: ErrorCodes.FINGERPRINTS_FILE },
      { file: to.instanceTagsFile, code: ErrorCodes.INSTAG_FILE },
    ]);
  } catch (error) {
    if (error instanceof OtrError && error.code === ErrorCodes.LOCKED) {
      throw new CliError(Exit.LOCKED, ErrorCodes.LOCKED, `refused: ${error.message}`, { cause: error });
    }
    throw error;
  }
  try {
    for (const file of [to.privkeysFile, to.contactsFile, to.instanceTagsFile]) {
      if (fs.existsSync(file)) {
        throw new CliError(
          Exit.TARGET_EXISTS,
          CliCodes.TARGET_EXISTS,
          `refused: ${file} already exists; import only into a directory without OTR files (move them away first)`,
        );
      }
    }
    for (const key of ['privkeysFile', 'contactsFile', 'instanceTagsFile'] as const) {
      if (!fs.existsSync(from[key])) continue;
      const bytes = fs.readFileSync(from[key]);
      try {
        writeFileAtomically(to[key], bytes);
      } catch (error) {
        throw new CliError(Exit.FAILURE, ErrorCodes.FILE_WRITE, `cannot write ${to[key]}: ${(error as Error).message}`, { cause: error });
      } finally {
        bytes.fill(0); // the private key's bytes
      }
    }
  } finally {
    lock.release();
  }
  return { value: { from, to, ...found }, skipped };
}
