// The part of `pg` (node-postgres) a PostgresStore uses, loaded on demand (it is an optional
// peer dependency), and how its failures become ERR_OTR_STORE.
import { ErrorCodes, OtrError } from '../errors';

export interface PgResult {
  rows: Record<string, unknown>[];
  rowCount: number | null;
}

export interface PgClient {
  connect(): Promise<void>;
  query(text: string, values?: unknown[]): Promise<PgResult>;
  end(): Promise<void>;
  connection?: { stream?: { destroy?(): void } };
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: 'error' | 'end', listener: (error?: Error) => void): unknown;
}

export interface PgModule {
  Client: new (config: Record<string, unknown>) => PgClient;
}

export function loadPg(): PgModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('pg') as PgModule;
  } catch (error) {
    throw new OtrError(ErrorCodes.STORE, "PostgresStore needs the 'pg' package (node-postgres): npm install pg", { cause: error });
  }
}

// Whether a query failed because the connection did (not because of the statement): then it is
// sent again on a new connection. SQLSTATE classes 08 (connection exception) and 57P (the
// server shutting down or starting), or no SQLSTATE at all (a socket error).
export function connectionLost(error: unknown): boolean {
  if (error instanceof OtrError) return false;
  const code = (error as { code?: unknown })?.code;
  return typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code) || code.startsWith('08') || code.startsWith('57P');
}

export function storeError(what: string, error: unknown): OtrError {
  if (error instanceof OtrError) return error;
  return new OtrError(ErrorCodes.STORE, `${what}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}
