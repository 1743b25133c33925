// Other nodes' trust changes in. A notification only names what to re-read (see
// trust-hints.ts): the node reads the rows back, which only the store's role can write, and
// applies what differs from its mirror, straight to the engine. A rename another node made is
// followed when the table shows it.
import { hexToHuman } from '../validate';
import type { Database } from './database';
import type { Lease } from './leases';
import type { Mirror } from './mirror';
import { storeError } from './pg';
import type { StoreHost, TrustChange } from './store';
import { type Hint, HintQueue, type RenameHint, contactKey, parseHint } from './trust-hints';

// A fingerprint's row as read back: its trust word and the node that wrote it.
interface StoredTrust {
  trust: string;
  by: string;
}

// Contacts waiting to be re-read before one read of the whole table replaces them, renames
// waiting to be checked, and contacts re-read per statement (see trust-hints.ts).
const MAX_HINTS = 1024;
const MAX_RENAMES = 64;
const HINT_BATCH = 256;

/** What applying other nodes' changes needs besides the mirror and the database. */
export interface TrustInOptions {
  /** This node's name (its own notifications are ignored). */
  node: string;
  /** The instance, once attached. */
  host: () => StoreHost | undefined;
  /** Whether the store is closed. */
  closed: () => boolean;
  /** Whether this node holds the contact's lease (a contact it owns never follows a rename). */
  holds: (lease: Pick<Lease, 'account' | 'protocol' | 'contact'>) => boolean;
}

export class TrustIn {
  readonly #mirror: Mirror;
  readonly #db: Database;
  readonly #node: string;
  readonly #host: () => StoreHost | undefined;
  readonly #closed: () => boolean;
  readonly #holds: TrustInOptions['holds'];
  #hints = new HintQueue(MAX_HINTS, MAX_RENAMES);
  #draining = false;
  #applying: Promise<void> = Promise.resolve();

  constructor(mirror: Mirror, db: Database, options: TrustInOptions) {
    this.#mirror = mirror;
    this.#db = db;
    this.#node = options.node;
    this.#host = options.host;
    this.#closed = options.closed;
    this.#holds = options.holds;
  }

  /** Settles when what is being applied now is done. */
  get applying(): Promise<void> {
    return this.#applying;
  }

  /** A notification on the trust channel. */
  notified(payload: string | undefined): void {
    const parsed = parseHint(payload);
    if (!parsed || parsed.hint.node === this.#node) return;
    const { hint, was } = parsed;
    const host = this.#host();
    if (host && !host.hasAccount(hint.account, hint.protocol)) return;
    if (was === undefined) this.#hints.add(hint);
    else this.#hints.addRename({ account: hint.account, protocol: hint.protocol, from: was, to: hint.contact, node: hint.node });
    this.wake();
  }

  /** Applies what waits, unless it is being applied already (or there is no instance yet). */
  wake(): void {
    if (this.#draining || !this.#host() || this.#closed()) return;
    this.#draining = true;
    this.#applying = this.#drain()
      .catch((error: unknown) => {
        // Whatever was taken is read again with everything else at the next hint.
        this.#hints.everything();
        const host = this.#host();
        if (!host?.closed) host?.report(storeError('cannot apply the trust changes of another node', error));
      })
      .finally(() => {
        this.#draining = false;
      });
  }

  async #drain(): Promise<void> {
    const host = this.#host()!;
    while (!host.closed && !this.#closed() && this.#hints.waiting) {
      if (this.#hints.takeEverything()) {
        await this.#reread(undefined);
        continue;
      }
      const rename = this.#hints.takeRename();
      if (rename) {
        await this.#followRename(rename);
        continue;
      }
      await this.#reread(this.#hints.take(HINT_BATCH));
    }
  }

  // The rows of these contacts (every contact's when undefined), by contact key then fingerprint.
  async #readRows(hints: Hint[] | undefined): Promise<Map<string, Map<string, StoredTrust>>> {
    const db = await this.#db.writer();
    const fp = this.#db.schema.table('fingerprints');
    const columns = 'account, protocol, contact, fingerprint, trust, changed_by';
    const { rows } = hints
      ? await db.query(
          `SELECT ${columns} FROM ${fp} JOIN unnest($1::text[], $2::text[], $3::text[]) AS k (account, protocol, contact) USING (account, protocol, contact)`,
          [hints.map((h) => h.account), hints.map((h) => h.protocol), hints.map((h) => h.contact)],
        )
      : await db.query(`SELECT ${columns} FROM ${fp}`);
    const table = new Map<string, Map<string, StoredTrust>>();
    for (const row of rows) {
      const key = contactKey(String(row.account), String(row.protocol), String(row.contact));
      const known = table.get(key) ?? new Map<string, StoredTrust>();
      known.set(String(row.fingerprint), { trust: String(row.trust), by: String(row.changed_by) });
      table.set(key, known);
    }
    return table;
  }

  // Applies the table's rows of these contacts (every contact's, and every one the mirror has,
  // when undefined). A contact with a write of this node on its way waits for it: the table
  // does not show that write yet.
  async #reread(hints: Hint[] | undefined): Promise<void> {
    const table = await this.#readRows(hints);
    let targets = hints;
    if (!targets) {
      const keys = new Set([...table.keys(), ...this.#mirror.rows.keys()]);
      targets = [...keys].map((key) => {
        const [account, protocol, contact] = key.split('\0');
        return { account, protocol, contact, node: '' };
      });
    }
    const later: Hint[] = [];
    for (const hint of targets) {
      const key = contactKey(hint.account, hint.protocol, hint.contact);
      if (this.#mirror.writing(key)) later.push(hint);
      else await this.#applyRows(hint, table.get(key) ?? new Map<string, StoredTrust>());
    }
    if (later.length > 0) {
      await this.#mirror.written();
      for (const hint of later) this.#hints.add(hint);
    }
  }

  // Makes the engine show what the table has for one contact, and says what changed. The
  // engine refusing it is reported for that contact alone: the others are still applied.
  async #applyRows(hint: Hint, rows: Map<string, StoredTrust>): Promise<void> {
    try {
      await this.#applyContactRows(hint, rows);
    } catch (error) {
      const host = this.#host();
      if (host?.closed !== false) return;
      host.report(storeError(`cannot apply the fingerprints another node stored for ${hint.contact}`, error));
    }
  }

  async #applyContactRows(hint: Hint, rows: Map<string, StoredTrust>): Promise<void> {
    const host = this.#host();
    const { account: a, protocol: p, contact: c } = hint;
    if (!host || host.closed || !host.hasAccount(a, p)) return;
    const key = contactKey(a, p, c);
    const mirror = new Map(this.#mirror.rows.get(key) ?? []);
    const changes: TrustChange[] = [];
    const change = (hex: string, trust: string, forgotten: boolean, node: string) =>
      changes.push({ account: a, protocol: p, contact: c, fingerprint: hexToHuman(hex), trust, verified: trust !== '', forgotten, origin: 'remote', node });
    // Straight to the engine: the public calls would also wait for this node's own writes.
    const engine = async (hex: string, expected: string | null, call: Parameters<StoreHost['call']>[0]) => {
      this.#mirror.expect(key, hex, expected);
      try {
        await host.call(call);
      } catch (error) {
        this.#mirror.unexpect(key, hex);
        throw error;
      }
    };
    for (const [hex, row] of rows) {
      const current = mirror.get(hex);
      const verified = row.trust !== '';
      if (current !== undefined && (current !== '') === verified) continue;
      if (current === undefined || verified) await engine(hex, row.trust, (job, handle) => handle.addContact(job, 0, a, p, c, hex, verified));
      else await engine(hex, row.trust, (job, handle) => handle.setTrust(job, 0, a, p, c, hex, false));
      change(hex, row.trust, false, row.by);
    }
    for (const hex of mirror.keys()) {
      if (rows.has(hex)) continue;
      await engine(hex, null, (job, handle) => handle.forgetFingerprint(job, 0, a, p, c, hex));
      // The row is gone: nothing in the table says who removed it but the hint.
      change(hex, '', true, hint.node);
    }
    if (changes.length === 0) return;
    host.showContact(a, p, c);
    for (const made of changes) this.#emit(made);
  }

  // Another node says it renamed `from` to `to`. This node's contact under `from` follows
  // (through the library's rename, so JS and the engine agree) only when the table shows the
  // move: no row left under `from`, and every fingerprint this node had for it under `to`; and
  // only a contact this node holds no lease of, with no channel. Then both names are applied.
  async #followRename(rename: RenameHint): Promise<void> {
    const { account: a, protocol: p, from, to, node } = rename;
    const hints = [from, to].map((contact) => ({ account: a, protocol: p, contact, node }));
    const table = await this.#readRows(hints);
    const fromKey = contactKey(a, p, from);
    const toKey = contactKey(a, p, to);
    const host = this.#host();
    const had = this.#mirror.rows.get(fromKey);
    const moved = table.get(toKey);
    const follow =
      host !== undefined &&
      host.hasIdleContact(a, p, from) &&
      had !== undefined &&
      had.size > 0 &&
      !table.has(fromKey) &&
      [...had.keys()].every((hex) => moved?.has(hex)) &&
      ![from, to].some((name) => this.#holds({ account: a, protocol: p, contact: name }) || this.#mirror.writing(contactKey(a, p, name)));
    if (follow) {
      const id = `${fromKey}\0${to}`;
      this.#mirror.following.add(id);
      this.#mirror.quiet.add(fromKey);
      this.#mirror.quiet.add(toKey);
      try {
        await host.renameContact(a, p, from, to);
      } catch {
        // Refused here (this node has a contact under `to` with something to lose): the rows
        // below still make both names show what the table has.
      } finally {
        this.#mirror.following.delete(id);
        this.#mirror.quiet.delete(fromKey);
        this.#mirror.quiet.delete(toKey);
      }
    }
    for (const hint of hints) await this.#applyRows(hint, table.get(contactKey(a, p, hint.contact)) ?? new Map<string, StoredTrust>());
  }

  // After a reconnection: notifications sent while this node was away are lost, so the whole
  // table is read again and every difference applied.
  resyncAll(): void {
    this.#hints.everything();
    this.wake();
  }

  #emit(change: TrustChange): void {
    const host = this.#host();
    if (host && !host.closed) host.trustChanged(change);
  }
}
