// The database objects of one PostgresStore, named by its prefix: its tables, its NOTIFY
// channel and its advisory lock keys; and the migration that creates or upgrades the tables.
import { createHash } from 'node:crypto';
import { ErrorCodes, OtrError } from '../errors';
import { type PgClient, storeError } from './pg';

const SCHEMA_VERSION = 2;

export type Table = 'accounts' | 'fingerprints' | 'schema' | 'leases';

export class Schema {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** A table's name, quoted. */
  table(name: Table): string {
    return `"${this.prefix}${name}"`;
  }

  /** The NOTIFY channel of trust changes. */
  get channel(): string {
    return `${this.prefix}trust`;
  }

  // A 64-bit advisory lock key of this store (PostgreSQL's bigint form): [signed, high, low].
  lockKey(what: string): [string, number, number] {
    const digest = createHash('sha256').update(`protocol-otr\0${this.prefix}\0${what}`).digest();
    const unsigned = digest.readBigUInt64BE(0);
    return [BigInt.asIntN(64, unsigned).toString(), Number(unsigned >> 32n), Number(unsigned & 0xffffffffn)];
  }

  /** Creates or upgrades this store's tables (done by every open; safe while other nodes run). */
  async migrate(db: PgClient): Promise<void> {
    await db.query('BEGIN');
    try {
      await db.query('SELECT pg_advisory_xact_lock($1::bigint)', [this.lockKey('schema')[0]]);
      await db.query(`CREATE TABLE IF NOT EXISTS ${this.table('schema')} (version integer NOT NULL)`);
      const { rows } = await db.query(`SELECT version FROM ${this.table('schema')}`);
      let version = rows.length > 0 ? Number(rows[0].version) : 0;
      if (rows.length === 0) await db.query(`INSERT INTO ${this.table('schema')} (version) VALUES (0)`);
      if (version > SCHEMA_VERSION) {
        throw new OtrError(
          ErrorCodes.STORE,
          `the tables with prefix ${this.prefix} have schema version ${version}, newer than this protocol-otr knows (${SCHEMA_VERSION}): upgrade protocol-otr on this node`,
        );
      }
      if (version < 1) {
        await db.query(`CREATE TABLE ${this.table('accounts')} (
          account text NOT NULL, protocol text NOT NULL,
          private_key text NOT NULL, instance_tag bigint NOT NULL,
          created_by text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (account, protocol))`);
        await db.query(`CREATE TABLE ${this.table('fingerprints')} (
          account text NOT NULL, protocol text NOT NULL, contact text NOT NULL,
          fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{40}$'), trust text NOT NULL DEFAULT '',
          changed_by text NOT NULL, changed_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (account, protocol, contact, fingerprint))`);
        version = 1;
      }
      if (version < 2) {
        // The fencing tokens: one row per contact ever leased, its token one more at every new owner.
        await db.query(`CREATE TABLE ${this.table('leases')} (
          account text NOT NULL, protocol text NOT NULL, contact text NOT NULL,
          token bigint NOT NULL, node text NOT NULL, taken_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (account, protocol, contact))`);
        version = 2;
      }
      await db.query(`UPDATE ${this.table('schema')} SET version = $1`, [version]);
      await db.query('COMMIT');
    } catch (error) {
      await db.query('ROLLBACK').catch(() => {});
      throw storeError('cannot create the store tables', error);
    }
  }
}
