// `db import` and `db export`: a file set to a PostgresStore's tables and back.
import { ErrorCodes, OtrError } from '../errors';
import { PostgresStore } from '../store/postgres-store';
import { CliError, Exit } from './errors';
import { type FileSet, type WithSkipped, refuseSkipped, withSnapshot } from './fileset';

export async function databaseTransfer(
  direction: 'import' | 'export',
  connection: string,
  prefix: string | undefined,
  files: FileSet,
  force: boolean,
): Promise<WithSkipped<Record<string, number>>> {
  // What libotr cannot read of the files is not imported either: said first, as for every command.
  const { skipped } = direction === 'import' ? await withSnapshot(files, () => undefined) : { skipped: [] };
  refuseSkipped(skipped, force, 'nothing was imported');
  const store = new PostgresStore({ connection, prefix, node: 'protocol-otr-cli' });
  try {
    const value = direction === 'import' ? await store.importFiles(files) : await store.exportFiles(files);
    return { value, skipped };
  } catch (error) {
    // Export rewrites the files and takes their lock: refused while a bridge holds them (exit code 3).
    if (error instanceof OtrError && error.code === ErrorCodes.LOCKED) {
      throw new CliError(Exit.LOCKED, ErrorCodes.LOCKED, `refused: ${error.message}`, { cause: error });
    }
    throw error;
  } finally {
    await store.end();
  }
}
