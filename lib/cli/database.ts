// `db import` and `db export`: a file set to a PostgresStore's tables and back.
import { ErrorCodes, OtrError } from '../errors';
import { FileSetLock } from '../lock';
import { PostgresStore } from '../postgres-store';
import { CliError, Exit } from './errors';
import type { FileSet } from './fileset';

export async function databaseTransfer(
  direction: 'import' | 'export',
  connection: string,
  prefix: string | undefined,
  files: FileSet,
): Promise<Record<string, number>> {
  const store = new PostgresStore({ connection, prefix, node: 'protocol-otr-cli' });
  // Export rewrites the files: refused while a bridge holds them (exit code 3).
  let lock: FileSetLock | undefined;
  try {
    lock =
      direction === 'export'
        ? FileSetLock.acquire([
            { file: files.privkeysFile, code: ErrorCodes.PRIVKEY_FILE },
            { file: files.contactsFile, code: ErrorCodes.FINGERPRINTS_FILE },
            { file: files.instanceTagsFile, code: ErrorCodes.INSTAG_FILE },
          ])
        : undefined;
  } catch (error) {
    if (error instanceof OtrError && error.code === ErrorCodes.LOCKED) throw new CliError(Exit.LOCKED, `refused: ${error.message}`);
    throw error;
  }
  try {
    return direction === 'import' ? await store.importFiles(files) : await store.exportFiles(files);
  } finally {
    lock?.release();
    await store.end();
  }
}
