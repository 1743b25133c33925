// A PostgresStore's connections: the writer (rows and pg_locks), made again after it breaks
// and migrating the tables the first time, and the lease connections; each runs its queries
// one after the other and counts them.
import { ErrorCodes, OtrError } from '../errors';
import type { LeaseSession } from './leases';
import { type PgClient, type PgModule, type PgResult, connectionLost, loadPg } from './pg';
import type { Schema } from './schema';

export interface DatabaseOptions {
  /** A `pg` Client configuration. */
  connection: Record<string, unknown>;
  /** The node's name (application_name). */
  node: string;
  /** A connection attempt gives up after this, unless the configuration says otherwise. */
  timeoutSeconds: number;
  schema: Schema;
}

export class Database {
  readonly schema: Schema;
  readonly #pg: PgModule;
  readonly #options: DatabaseOptions;
  #writer: Promise<PgClient> | undefined;
  #migrated = false;
  #retrying = true;
  #ended = false;
  #statements = 0;
  #heartbeats = 0;

  /** Loads `pg` (throws ERR_OTR_STORE without it); connects on first use. */
  constructor(options: DatabaseOptions) {
    this.#options = options;
    this.schema = options.schema;
    this.#pg = loadPg();
  }

  /** Statements sent so far (every connection), heartbeats aside. */
  get statements(): number {
    return this.#statements;
  }

  /** Heartbeats sent so far on the lease connections. */
  get heartbeats(): number {
    return this.#heartbeats;
  }

  // A connection whose queries run one after the other (pg wants no query issued while one
  // runs); `onSent` is called when a query's turn comes. A connection attempt gives up after
  // the lease timeout unless the configuration says otherwise.
  async client(): Promise<PgClient & LeaseSession> {
    const { connection, node, timeoutSeconds } = this.#options;
    const client = new this.#pg.Client({ connectionTimeoutMillis: timeoutSeconds * 1000, ...connection, application_name: node });
    // An error before anyone listens must not be thrown as an uncaught 'error' event.
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (error) {
      client.connection?.stream?.destroy?.();
      throw error;
    }
    let tail: Promise<unknown> = Promise.resolve();
    return {
      connect: () => client.connect(),
      end: () => client.end(),
      on: client.on.bind(client),
      destroy: () => {
        client.connection?.stream?.destroy?.();
        client.end().catch(() => {});
      },
      query: (text: string, values?: unknown[], onSent?: () => void, heartbeat = false) => {
        if (heartbeat) this.#heartbeats++;
        else this.#statements++;
        const run = tail.then(() => {
          onSent?.();
          return client.query(text, values);
        });
        tail = run.catch(() => {});
        return run;
      },
    };
  }

  // The connection for rows and pg_locks; made again after it breaks.
  writer(): Promise<PgClient> {
    if (this.#ended) return Promise.reject(new OtrError(ErrorCodes.STORE, 'the store is closed'));
    if (!this.#writer) {
      const made = this.client().then(async (writer) => {
        const drop = () => {
          if (this.#writer === made) this.#writer = undefined;
        };
        writer.on('error', drop);
        writer.on('end', drop);
        if (!this.#migrated) {
          await this.schema.migrate(writer);
          this.#migrated = true;
        }
        return writer;
      });
      made.catch(() => {
        if (this.#writer === made) this.#writer = undefined;
      });
      this.#writer = made;
    }
    return this.#writer;
  }

  // A row-level statement on the writer. Idempotent statements only: one the connection lost
  // before its answer is sent again once the database is back (backoff up to 5 s), until the
  // store closes — a trust change made while the database restarts is stored, not dropped.
  async run(sql: string, values: unknown[]): Promise<PgResult> {
    for (let wait = 100; ; wait = Math.min(wait * 2, 5000)) {
      try {
        return await (await this.writer()).query(sql, values);
      } catch (error) {
        if (!this.#retrying || !connectionLost(error)) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** The store is closing: a statement the connection lost is no longer sent again. */
  stopRetries(): void {
    this.#retrying = false;
  }

  /** Ends the writer; later uses are refused. */
  async end(): Promise<void> {
    this.#ended = true;
    const writer = this.#writer;
    this.#writer = undefined;
    await writer?.then((w) => w.end()).catch(() => {});
  }
}
