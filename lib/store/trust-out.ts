// This node's trust changes out: every change the engine reports for a contact's fingerprints
// becomes one row-level statement whose NOTIFY names the contact (other nodes read the row
// back). A change that a remote one being applied explains is not written back.
import type { NativeContact } from '../native';
import { hexToHuman } from '../validate';
import type { Database } from './database';
import type { Mirror } from './mirror';
import { storeError } from './pg';
import type { StoreHost } from './store';
import { contactKey } from './trust-hints';

export class TrustOut {
  readonly #mirror: Mirror;
  readonly #db: Database;
  readonly #node: string;
  readonly #host: () => StoreHost | undefined;

  constructor(mirror: Mirror, db: Database, node: string, host: () => StoreHost | undefined) {
    this.#mirror = mirror;
    this.#db = db;
    this.#node = node;
    this.#host = host;
  }

  /** A contact's state as the engine now has it. */
  contactState(state: NativeContact): void {
    const key = contactKey(state.account, state.protocol, state.username);
    const before = this.#mirror.rows.get(key) ?? new Map<string, string>();
    const now = new Map(state.fingerprints.map((f) => [f.hex, f.trust] as [string, string]));
    if (now.size > 0) this.#mirror.rows.set(key, now);
    else this.#mirror.rows.delete(key);
    if (this.#mirror.quiet.has(key)) return;
    for (const [hex, trust] of now) {
      const was = before.get(hex);
      if (was !== undefined && (was !== '') === (trust !== '')) continue;
      if (this.#mirror.consume(key, hex, trust)) continue;
      this.#write(state, hex, was === undefined && trust === '' ? 'seen' : 'trust', trust);
    }
    for (const hex of before.keys()) {
      if (now.has(hex) || this.#mirror.consume(key, hex, null)) continue;
      this.#write(state, hex, 'forget', '');
    }
  }

  #write(state: NativeContact, hex: string, kind: 'seen' | 'trust' | 'forget', trust: string): void {
    const fp = this.#db.schema.table('fingerprints');
    // The notification names the contact, not the change: other nodes read the row back.
    const notify = `SELECT pg_notify($6, json_build_object('n', $5::text, 'a', account, 'p', protocol, 'c', contact)::text) FROM row`;
    const sql =
      kind === 'seen'
        ? `WITH row AS (INSERT INTO ${fp} AS f (account, protocol, contact, fingerprint, trust, changed_by)
             VALUES ($1, $2, $3, $4, '', $5) ON CONFLICT DO NOTHING RETURNING *, $7::text AS unused) ${notify}`
        : kind === 'trust'
          ? `WITH row AS (INSERT INTO ${fp} AS f (account, protocol, contact, fingerprint, trust, changed_by)
               VALUES ($1, $2, $3, $4, $7, $5)
               ON CONFLICT (account, protocol, contact, fingerprint)
               DO UPDATE SET trust = EXCLUDED.trust, changed_by = EXCLUDED.changed_by, changed_at = now()
               WHERE f.trust IS DISTINCT FROM EXCLUDED.trust RETURNING *) ${notify}`
          : `WITH row AS (DELETE FROM ${fp} WHERE account = $1 AND protocol = $2 AND contact = $3 AND fingerprint = $4
               RETURNING *, $7::text AS unused) ${notify}`;
    const values = [state.account, state.protocol, state.username, hex, this.#node, this.#db.schema.channel, trust];
    const done = this.#db
      .run(sql, values)
      .then(({ rowCount }) => {
        const host = this.#host();
        if (rowCount === 1 && kind !== 'seen' && host && !host.closed) {
          host.trustChanged({
            account: state.account,
            protocol: state.protocol,
            contact: state.username,
            fingerprint: hexToHuman(hex),
            trust,
            verified: trust !== '',
            forgotten: kind === 'forget',
            origin: 'local',
            node: this.#node,
          });
        }
      })
      .catch((error: unknown) => {
        const failure = storeError(`cannot store the ${kind === 'forget' ? 'removal' : 'trust'} of ${state.username}'s fingerprint ${hexToHuman(hex)}`, error);
        this.#host()?.report(failure);
        throw failure;
      });
    this.#mirror.track(done, [contactKey(state.account, state.protocol, state.username)]);
  }
}
