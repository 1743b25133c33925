// `db import` and `db export`: a file set to a PostgresStore's tables and back.
import { ErrorCodes, OtrError } from '../errors';
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
  try {
    return direction === 'import' ? await store.importFiles(files) : await store.exportFiles(files);
  } catch (error) {
    // Export rewrites the files and takes their lock: refused while a bridge holds them (exit code 3).
    if (error instanceof OtrError && error.code === ErrorCodes.LOCKED) throw new CliError(Exit.LOCKED, `refused: ${error.message}`);
    throw error;
  } finally {
    await store.end();
  }
}
