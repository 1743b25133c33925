// Renames on a shared store: the lease moves with the name, and so do the rows. A rename
// asked here takes the names' leases first; once the engine made it, the rows move in one
// statement whose notification names both names, and the old name's lease is given up.
import type { Database } from './database';
import type { Lease } from './leases';
import type { Mirror } from './mirror';
import { storeError } from './pg';
import type { StoreHost } from './store';
import { contactKey } from './trust-hints';

/** The node's leases as a rename uses them: PostgresStore's lease() and release(). */
export interface RenameLeases {
  holds(lease: Pick<Lease, 'account' | 'protocol' | 'contact'>): boolean;
  lease(account: string, protocol: string, contact: string): Promise<unknown>;
  release(account: string, protocol: string, contact: string): Promise<void>;
}

export class Renames {
  readonly #mirror: Mirror;
  readonly #db: Database;
  readonly #node: string;
  readonly #host: () => StoreHost | undefined;
  readonly #leases: RenameLeases;
  // The leases a rename on its way took for it (given back if the engine refuses it).
  #takenForRename = new Map<string, string[]>();

  constructor(mirror: Mirror, db: Database, node: string, host: () => StoreHost | undefined, leases: RenameLeases) {
    this.#mirror = mirror;
    this.#db = db;
    this.#node = node;
    this.#host = host;
    this.#leases = leases;
  }

  /**
   * A rename asked on this node takes the new name's lease first, and the old
   * name's when this node does not hold it: either owned elsewhere rejects with
   * ERR_OTR_CONTACT_OWNED, and nothing changes. A rename this node follows takes nothing.
   */
  async before(account: string, protocol: string, from: string, to: string): Promise<void> {
    const id = `${contactKey(account, protocol, from)}\0${to}`;
    if (this.#mirror.following.has(id)) return;
    const taken: string[] = [];
    try {
      for (const name of [to, from]) {
        if (this.#leases.holds({ account, protocol, contact: name })) continue;
        await this.#leases.lease(account, protocol, name);
        taken.push(name);
      }
    } catch (error) {
      await this.#giveBack(account, protocol, taken);
      throw error;
    }
    this.#takenForRename.set(id, taken);
  }

  /** The engine refused a rename before() allowed: what it took is given back. */
  async refused(account: string, protocol: string, from: string, to: string): Promise<void> {
    const id = `${contactKey(account, protocol, from)}\0${to}`;
    const taken = this.#takenForRename.get(id) ?? [];
    this.#takenForRename.delete(id);
    await this.#giveBack(account, protocol, taken);
  }

  async #giveBack(account: string, protocol: string, names: string[]): Promise<void> {
    for (const name of names) await this.#leases.release(account, protocol, name).catch(() => {});
  }

  /**
   * The engine renamed a contact. Asked here: its rows move to the new name in one
   * statement (one transaction) whose notification names both names, then the old name's
   * lease is given up (the name is free for whoever takes it next). Followed from another
   * node: only this node's mirror moves.
   */
  renamed(account: string, protocol: string, from: string, to: string): void {
    const fromKey = contactKey(account, protocol, from);
    const toKey = contactKey(account, protocol, to);
    const rows = this.#mirror.rows.get(fromKey);
    this.#mirror.rows.delete(fromKey);
    if (rows) this.#mirror.rows.set(toKey, rows);
    else this.#mirror.rows.delete(toKey);
    const id = `${fromKey}\0${to}`;
    if (this.#mirror.following.has(id)) return;
    this.#takenForRename.delete(id);
    const fp = this.#db.schema.table('fingerprints');
    const done = this.#db
      .run(
        `WITH moved AS (DELETE FROM ${fp} WHERE account = $1 AND protocol = $2 AND contact = $3 RETURNING fingerprint, trust),
         put AS (INSERT INTO ${fp} AS f (account, protocol, contact, fingerprint, trust, changed_by)
           SELECT $1, $2, $4, fingerprint, trust, $5 FROM moved
           ON CONFLICT (account, protocol, contact, fingerprint)
           DO UPDATE SET trust = EXCLUDED.trust, changed_by = EXCLUDED.changed_by, changed_at = now() RETURNING 1)
         SELECT (SELECT count(*) FROM put) AS moved,
           pg_notify($6, json_build_object('n', $5::text, 'a', $1::text, 'p', $2::text, 'c', $4::text, 'w', $3::text)::text)`,
        [account, protocol, from, to, this.#node, this.#db.schema.channel],
      )
      .catch((error: unknown) => {
        const failure = storeError(`cannot move ${from}'s fingerprints to ${to}`, error);
        this.#host()?.report(failure);
        throw failure;
      })
      // A lease connection gone meanwhile took the lease with it: nothing left to give up.
      .then(() => this.#leases.release(account, protocol, from).catch(() => {}));
    this.#mirror.track(done, [fromKey, toKey]);
  }
}
