// A Store in PostgreSQL, shared by several nodes (processes, machines) behind the same
// accounts: one identity (private keys and instance tags), one set of fingerprints and trust
// (rows, written as changes and announced with NOTIFY), and one owner per contact (a session
// advisory lock held on a dedicated connection). See docs/MULTI-NODE.md.
//
// The engine still works on the three Pidgin-format files: at open, this store makes them in
// a private working directory of the node (mode 0700) from the database, and removes them at
// close. Every change the engine reports for a contact's fingerprints becomes one row-level
// statement whose NOTIFY names the contact; another node reads that contact's rows back and
// applies what differs to its live state (the payload itself is never trusted).
import * as os from 'node:os';
import { ErrorCodes, OtrError } from '../errors';
import type { NativeContact } from '../native';
import { describe, hexToHuman, rejectUnknownOptions, requireInteger, requireName, requireText } from '../validate';
import { Database } from './database';
import { type IdentityOptions, storeMissingKeys, writeWorkingCopy } from './identity';
import { type Lease, type LeaseSession, LeaseKeeper } from './leases';
import { storeError } from './pg';
import { Schema } from './schema';
import { Store, type StoreFiles, type StoreHost, type StoreOpening, type TrustChange } from './store';
import { exportFiles, importFiles } from './transfer';
import { type Hint, HintQueue, type RenameHint, contactKey, parseHint } from './trust-hints';
import type { WorkDir } from './work-dir';

/** Options of {@link PostgresStore}. */
export interface PostgresStoreOptions {
  /** A connection string, or a `pg` Client configuration (host, port, user, database, ssl, …). */
  connection: string | Record<string, unknown>;
  /** Prefix of this store's tables and NOTIFY channel: lower-case letters, digits, '_' (default 'otr_'). */
  prefix?: string;
  /** This node's name, shown to other nodes as the owner of its contacts (default host:pid; at most 63 bytes). */
  node?: string;
  /** The accounts this node serves: a missing key is generated at open and stored once for every node. */
  accounts?: {
    /** The account's name. */
    name: string;
    /** Its protocol. */
    protocol: string;
  }[];
  /** Where the node's working copy of the files is made (default the OS temp dir; a tmpfs is best). */
  workDir?: string;
  /**
   * How long a node that vanished without closing its connection (host down, network cut)
   * keeps its leases, in seconds: TCP keepalive on the lease connection (default 10). A
   * process that dies on a live host loses them at once (the kernel closes its socket).
   */
  leaseTimeoutSeconds?: number;
}

export type { Lease } from './leases';

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

/**
 * A store in PostgreSQL shared by several nodes behind the same accounts: one identity, trust
 * shared live, one owner per contact (docs/MULTI-NODE.md). Serves one OTR instance
 * (`OTR.open({ store })`), or import/export on its own.
 */
export class PostgresStore extends Store {
  readonly kind = 'postgres';
  /** Prefix of the tables and the NOTIFY channel. */
  readonly prefix: string;
  /** This node's name, as other nodes see it. */
  readonly node: string;
  /** How long a vanished host keeps its leases (TCP keepalive of the lease connection). */
  readonly leaseTimeoutSeconds: number;
  /** Keys this node generated at open; `stored: false` means another node stored its key first, and that one is used. */
  readonly keysGenerated: {
    /** The account's name. */
    account: string;
    /** Its protocol. */
    protocol: string;
    /** Whether this node's key is the one stored. */
    stored: boolean;
  }[] = [];

  readonly #schema: Schema;
  readonly #db: Database;
  readonly #accounts: { name: string; protocol: string }[];
  readonly #identity: IdentityOptions;
  #keeper: LeaseKeeper | undefined;
  #workDir: WorkDir | undefined;
  #host: StoreHost | undefined;
  #closed = false;
  // What the engine has for each contact (hex → trust): its changes are diffed against it.
  #mirror = new Map<string, Map<string, string>>();
  // What a remote change being applied will make the engine show (null: forgotten): not a local change.
  #expect = new Map<string, string | null>();
  #pending = new Set<Promise<void>>();
  #applying: Promise<void> = Promise.resolve();
  #hints = new HintQueue(MAX_HINTS, MAX_RENAMES);
  #draining = false;
  // Contacts with a write of this node on its way (how many): the table does not show it yet.
  #localWrites = new Map<string, number>();
  // Renames of another node this node is following (`${fromKey}\0${to}`), and the contacts
  // whose engine changes meanwhile are the table's, not this node's: not written back.
  #following = new Set<string>();
  #quiet = new Set<string>();
  // The leases a rename on its way took for it (given back if the engine refuses it).
  #takenForRename = new Map<string, string[]>();

  /** Checks the options and loads `pg`; connects only when opened (or on import/export). */
  constructor(options: PostgresStoreOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new OtrError(ErrorCodes.INVALID_ARGUMENT, `new PostgresStore() options must be an object, got ${describe(options)}`);
    rejectUnknownOptions('new PostgresStore()', options, ['connection', 'prefix', 'node', 'accounts', 'workDir', 'leaseTimeoutSeconds'] satisfies (keyof PostgresStoreOptions)[]);
    const { connection } = options;
    let config: Record<string, unknown>;
    if (typeof connection === 'string') config = { connectionString: requireText('connection', connection) };
    else if (connection !== null && typeof connection === 'object') config = { ...connection };
    else throw new OtrError(ErrorCodes.INVALID_ARGUMENT, 'connection must be a connection string or a pg Client configuration');
    this.prefix = options.prefix ?? 'otr_';
    if (typeof this.prefix !== 'string' || !/^[a-z_][a-z0-9_]{0,40}$/.test(this.prefix)) {
      throw new OtrError(ErrorCodes.INVALID_ARGUMENT, `prefix must be 1-41 lower-case letters, digits or '_' starting with a letter or '_', got ${JSON.stringify(this.prefix)}`);
    }
    this.node = requireName('node', options.node ?? `${os.hostname()}:${process.pid}`);
    if (Buffer.byteLength(this.node) > 63) throw new OtrError(ErrorCodes.INVALID_ARGUMENT, 'node must be at most 63 bytes (PostgreSQL shows it as application_name)');
    this.#accounts = (options.accounts ?? []).map((a, i) => ({
      name: requireName(`accounts[${i}].name`, a?.name),
      protocol: requireName(`accounts[${i}].protocol`, a?.protocol),
    }));
    this.leaseTimeoutSeconds = requireInteger('leaseTimeoutSeconds', options.leaseTimeoutSeconds ?? 10, 3, 3600);
    this.#schema = new Schema(this.prefix);
    this.#identity = { schema: this.#schema, node: this.node, workParent: requireText('workDir', options.workDir ?? os.tmpdir()) };
    this.#db = new Database({ connection: config, node: this.node, timeoutSeconds: this.leaseTimeoutSeconds, schema: this.#schema });
  }

  /** @internal */
  async _open(opening: StoreOpening): Promise<StoreFiles> {
    if (this.#keeper || this.#closed) throw new OtrError(ErrorCodes.STORE, 'a PostgresStore serves one OTR instance: make a new one');
    try {
      const db = await this.#db.writer();
      this.#keeper = new LeaseKeeper({
        node: this.node,
        timeoutSeconds: this.leaseTimeoutSeconds,
        table: this.#schema.table('leases'),
        lockKey: (l) => this.#schema.lockKey(`contact\0${contactKey(l.account, l.protocol, l.contact)}`)[0],
        connect: (broken) => this.#openLeaseConnection(broken),
        lost: (leases, why) => this.#leasesLost(leases, why),
        taken: (leases) => this.#leasesTaken(leases),
        restored: (leases) => this.#leaseEvent('leasesRestored', leases),
        suspended: (leases, why) => this.#leaseEvent('leasesSuspended', leases, why),
        reconnected: () => this.#reconnected(),
      });
      // Listening before reading the rows: no change made meanwhile is missed.
      await this.#keeper.open();

      await storeMissingKeys(db, this.#identity, this.#accounts, opening, this.keysGenerated);
      const copy = await writeWorkingCopy(db, this.#identity);
      this.#workDir = copy.dir;
      for (const row of copy.fingerprints) {
        const key = contactKey(row.account, row.protocol, row.contact);
        const known = this.#mirror.get(key) ?? new Map<string, string>();
        known.set(row.fingerprint, row.trust);
        this.#mirror.set(key, known);
      }
      return copy.files;
    } catch (error) {
      await this._close();
      throw storeError('cannot open the PostgreSQL store', error);
    }
  }

  /** @internal */
  override _attach(host: StoreHost): void {
    this.#host = host;
    this.#wake();
  }

  /** @internal */
  override _allowsNewAccount(name: string, protocol: string): void {
    throw new OtrError(
      ErrorCodes.STORE,
      `${name} (${protocol}) is not an account of this store: list it in PostgresStore's accounts, so that its key is made once for every node at open`,
    );
  }

  /** @internal */
  override _requireOwner(account: string, protocol: string, contact: string): void {
    if (!this.#keeper) throw new OtrError(ErrorCodes.STORE, 'the store is not open');
    this.#keeper.requireOwner({ account, protocol, contact });
  }

  /** @internal */
  override _admit(account: string, protocol: string, contact: string): Promise<void> | undefined {
    if (!this.#keeper) return Promise.reject(new OtrError(ErrorCodes.STORE, 'the store is not open'));
    return this.#keeper.admit({ account, protocol, contact });
  }

  /** @internal */
  override _mayAct(account: string, protocol: string, contact: string): boolean {
    return this.#keeper?.mayAct({ account, protocol, contact }) ?? false;
  }

  // ---- fingerprints and trust: local changes out ----

  /** @internal */
  override _contactState(state: NativeContact): void {
    const key = contactKey(state.account, state.protocol, state.username);
    const before = this.#mirror.get(key) ?? new Map<string, string>();
    const now = new Map(state.fingerprints.map((f) => [f.hex, f.trust] as [string, string]));
    if (now.size > 0) this.#mirror.set(key, now);
    else this.#mirror.delete(key);
    if (this.#quiet.has(key)) return;
    for (const [hex, trust] of now) {
      const was = before.get(hex);
      if (was !== undefined && (was !== '') === (trust !== '')) continue;
      if (this.#consume(key, hex, trust)) continue;
      this.#write(state, hex, was === undefined && trust === '' ? 'seen' : 'trust', trust);
    }
    for (const hex of before.keys()) {
      if (now.has(hex) || this.#consume(key, hex, null)) continue;
      this.#write(state, hex, 'forget', '');
    }
  }

  // True when the engine now shows what a remote change being applied was to make it show.
  #consume(key: string, hex: string, value: string | null): boolean {
    const id = `${key}\0${hex}`;
    if (!this.#expect.has(id)) return false;
    const expected = this.#expect.get(id)!;
    this.#expect.delete(id);
    return expected === null ? value === null : value !== null && (expected !== '') === (value !== '');
  }

  #write(state: NativeContact, hex: string, kind: 'seen' | 'trust' | 'forget', trust: string): void {
    const fp = this.#schema.table('fingerprints');
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
    const values = [state.account, state.protocol, state.username, hex, this.node, this.#schema.channel, trust];
    const done = this.#db.run(sql, values)
      .then(({ rowCount }) => {
        if (rowCount === 1 && kind !== 'seen') {
          this.#emit({ account: state.account, protocol: state.protocol, contact: state.username, fingerprint: hexToHuman(hex), trust, verified: trust !== '', forgotten: kind === 'forget', origin: 'local', node: this.node });
        }
      })
      .catch((error: unknown) => {
        const failure = storeError(`cannot store the ${kind === 'forget' ? 'removal' : 'trust'} of ${state.username}'s fingerprint ${hexToHuman(hex)}`, error);
        this.#host?.report(failure);
        throw failure;
      });
    this.#track(done, [contactKey(state.account, state.protocol, state.username)]);
  }

  // A write on its way, for these contacts (re-reads of them wait until it is stored).
  #track(done: Promise<void>, keys: string[]): void {
    this.#pending.add(done);
    for (const key of keys) this.#localWrites.set(key, (this.#localWrites.get(key) ?? 0) + 1);
    const drop = () => {
      this.#pending.delete(done);
      for (const key of keys) {
        const left = (this.#localWrites.get(key) ?? 1) - 1;
        if (left > 0) this.#localWrites.set(key, left);
        else this.#localWrites.delete(key);
      }
    };
    done.then(drop, drop);
  }

  /** @internal */
  override async _settled(): Promise<void> {
    const results = await Promise.allSettled([...this.#pending]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  // ---- fingerprints and trust: other nodes' changes in ----

  // A notification only names what to re-read (see trust-hints.ts): the node reads the rows
  // back, which only the store's role can write, and applies what differs from its mirror.
  #notified(payload: string | undefined): void {
    const parsed = parseHint(payload);
    if (!parsed || parsed.hint.node === this.node) return;
    const { hint, was } = parsed;
    if (this.#host && !this.#host.hasAccount(hint.account, hint.protocol)) return;
    if (was === undefined) this.#hints.add(hint);
    else this.#hints.addRename({ account: hint.account, protocol: hint.protocol, from: was, to: hint.contact, node: hint.node });
    this.#wake();
  }

  #wake(): void {
    if (this.#draining || !this.#host || this.#closed) return;
    this.#draining = true;
    this.#applying = this.#drain()
      .catch((error: unknown) => {
        // Whatever was taken is read again with everything else at the next hint.
        this.#hints.everything();
        if (!this.#host?.closed) this.#host?.report(storeError('cannot apply the trust changes of another node', error));
      })
      .finally(() => {
        this.#draining = false;
      });
  }

  async #drain(): Promise<void> {
    const host = this.#host!;
    while (!host.closed && !this.#closed && this.#hints.waiting) {
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
    const fp = this.#schema.table('fingerprints');
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
      const keys = new Set([...table.keys(), ...this.#mirror.keys()]);
      targets = [...keys].map((key) => {
        const [account, protocol, contact] = key.split('\0');
        return { account, protocol, contact, node: '' };
      });
    }
    const later: Hint[] = [];
    for (const hint of targets) {
      const key = contactKey(hint.account, hint.protocol, hint.contact);
      if (this.#localWrites.has(key)) later.push(hint);
      else await this.#applyRows(hint, table.get(key) ?? new Map<string, StoredTrust>());
    }
    if (later.length > 0) {
      await Promise.allSettled([...this.#pending]);
      for (const hint of later) this.#hints.add(hint);
    }
  }

  // Makes the engine show what the table has for one contact, and says what changed. The
  // engine refusing it is reported for that contact alone: the others are still applied.
  async #applyRows(hint: Hint, rows: Map<string, StoredTrust>): Promise<void> {
    try {
      await this.#applyContactRows(hint, rows);
    } catch (error) {
      if (this.#host?.closed !== false) return;
      this.#host.report(storeError(`cannot apply the fingerprints another node stored for ${hint.contact}`, error));
    }
  }

  async #applyContactRows(hint: Hint, rows: Map<string, StoredTrust>): Promise<void> {
    const host = this.#host;
    const { account: a, protocol: p, contact: c } = hint;
    if (!host || host.closed || !host.hasAccount(a, p)) return;
    const key = contactKey(a, p, c);
    const mirror = new Map(this.#mirror.get(key) ?? []);
    const changes: TrustChange[] = [];
    const change = (hex: string, trust: string, forgotten: boolean, node: string) =>
      changes.push({ account: a, protocol: p, contact: c, fingerprint: hexToHuman(hex), trust, verified: trust !== '', forgotten, origin: 'remote', node });
    // Straight to the engine: the public calls would also wait for this node's own writes.
    const engine = async (hex: string, expected: string | null, call: Parameters<StoreHost['call']>[0]) => {
      const id = `${key}\0${hex}`;
      this.#expect.set(id, expected);
      try {
        await host.call(call);
      } catch (error) {
        this.#expect.delete(id);
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
    const host = this.#host;
    const had = this.#mirror.get(fromKey);
    const moved = table.get(toKey);
    const follow =
      host !== undefined &&
      host.hasIdleContact(a, p, from) &&
      had !== undefined &&
      had.size > 0 &&
      !table.has(fromKey) &&
      [...had.keys()].every((hex) => moved?.has(hex)) &&
      ![from, to].some((name) => this.#keeper?.holds({ account: a, protocol: p, contact: name }) || this.#localWrites.has(contactKey(a, p, name)));
    if (follow) {
      const id = `${fromKey}\0${to}`;
      this.#following.add(id);
      this.#quiet.add(fromKey);
      this.#quiet.add(toKey);
      try {
        await host.renameContact(a, p, from, to);
      } catch {
        // Refused here (this node has a contact under `to` with something to lose): the rows
        // below still make both names show what the table has.
      } finally {
        this.#following.delete(id);
        this.#quiet.delete(fromKey);
        this.#quiet.delete(toKey);
      }
    }
    for (const hint of hints) await this.#applyRows(hint, table.get(contactKey(a, p, hint.contact)) ?? new Map<string, StoredTrust>());
  }

  // After a reconnection: notifications sent while this node was away are lost, so the whole
  // table is read again and every difference applied.
  #resyncAll(): void {
    this.#hints.everything();
    this.#wake();
  }

  #emit(change: TrustChange): void {
    const host = this.#host;
    if (host && !host.closed) host.trustChanged(change);
  }

  // ---- renames: the lease moves with the name ----

  /**
   * @internal A rename asked on this node takes the new name's lease first, and the old
   * name's when this node does not hold it: either owned elsewhere rejects with
   * ERR_OTR_CONTACT_OWNED, and nothing changes. A rename this node follows takes nothing.
   */
  override async _beforeRename(account: string, protocol: string, from: string, to: string): Promise<void> {
    const id = `${contactKey(account, protocol, from)}\0${to}`;
    if (this.#following.has(id)) return;
    const taken: string[] = [];
    try {
      for (const name of [to, from]) {
        if (this.#keeper?.holds({ account, protocol, contact: name })) continue;
        await this.lease(account, protocol, name);
        taken.push(name);
      }
    } catch (error) {
      await this.#giveBack(account, protocol, taken);
      throw error;
    }
    this.#takenForRename.set(id, taken);
  }

  /** @internal */
  override async _renameRefused(account: string, protocol: string, from: string, to: string): Promise<void> {
    const id = `${contactKey(account, protocol, from)}\0${to}`;
    const taken = this.#takenForRename.get(id) ?? [];
    this.#takenForRename.delete(id);
    await this.#giveBack(account, protocol, taken);
  }

  async #giveBack(account: string, protocol: string, names: string[]): Promise<void> {
    for (const name of names) await this.release(account, protocol, name).catch(() => {});
  }

  /**
   * @internal The engine renamed a contact. Asked here: its rows move to the new name in one
   * statement (one transaction) whose notification names both names, then the old name's
   * lease is given up (the name is free for whoever takes it next). Followed from another
   * node: only this node's mirror moves.
   */
  override _renamed(account: string, protocol: string, from: string, to: string): void {
    const fromKey = contactKey(account, protocol, from);
    const toKey = contactKey(account, protocol, to);
    const rows = this.#mirror.get(fromKey);
    this.#mirror.delete(fromKey);
    if (rows) this.#mirror.set(toKey, rows);
    else this.#mirror.delete(toKey);
    const id = `${fromKey}\0${to}`;
    if (this.#following.has(id)) return;
    this.#takenForRename.delete(id);
    const fp = this.#schema.table('fingerprints');
    const done = this.#db.run(
          `WITH moved AS (DELETE FROM ${fp} WHERE account = $1 AND protocol = $2 AND contact = $3 RETURNING fingerprint, trust),
           put AS (INSERT INTO ${fp} AS f (account, protocol, contact, fingerprint, trust, changed_by)
             SELECT $1, $2, $4, fingerprint, trust, $5 FROM moved
             ON CONFLICT (account, protocol, contact, fingerprint)
             DO UPDATE SET trust = EXCLUDED.trust, changed_by = EXCLUDED.changed_by, changed_at = now() RETURNING 1)
           SELECT (SELECT count(*) FROM put) AS moved,
             pg_notify($6, json_build_object('n', $5::text, 'a', $1::text, 'p', $2::text, 'c', $4::text, 'w', $3::text)::text)`,
          [account, protocol, from, to, this.node, this.#schema.channel],
    )
      .catch((error: unknown) => {
        const failure = storeError(`cannot move ${from}'s fingerprints to ${to}`, error);
        this.#host?.report(failure);
        throw failure;
      })
      // A lease connection gone meanwhile took the lease with it: nothing left to give up.
      .then(() => this.release(account, protocol, from).catch(() => {}));
    this.#track(done, [fromKey, toKey]);
  }

  // ---- one owner per contact (the leases themselves: leases.ts) ----

  // A lease connection: keepalives from the lease timeout, and the NOTIFY channel listened to.
  async #openLeaseConnection(broken: (why: string) => void): Promise<LeaseSession> {
    const session = await this.#db.client();
    session.on('error', (error) => broken(`lease connection: ${error?.message}`));
    session.on('end', () => broken('lease connection ended'));
    session.on('notification', (message) => this.#notified(message.payload));
    try {
      // A node that vanishes without a word loses its leases when the server gives up on it:
      // no sooner than t seconds after it last heard from the node (docs/MULTI-NODE.md).
      const t = this.leaseTimeoutSeconds;
      const interval = Math.max(1, Math.floor(t / 6));
      await session.query(`SET tcp_keepalives_idle = ${Math.max(1, t - 3 * interval)}`);
      await session.query(`SET tcp_keepalives_interval = ${interval}`);
      await session.query('SET tcp_keepalives_count = 3');
      await session.query(`SET tcp_user_timeout = ${t * 1000}`);
      await session.query(`LISTEN "${this.#schema.channel}"`);
    } catch (error) {
      session.destroy();
      throw error;
    }
    return session;
  }

  #leaseEvent(event: 'leasesRestored' | 'leasesSuspended' | 'leasesLost', leases: Lease[], why?: string): void {
    const host = this.#host;
    if (!host || host.closed) return;
    host.leaseEvent(event, leases, why ?? '');
  }

  // Given up at the renew deadline, or found taken on reconnection: the channels stay open and
  // refuse calls (ERR_OTR_NOT_OWNER) until the lease is taken again or they are closed.
  #leasesLost(leases: Lease[], why: string): void {
    this.#host?.report(new OtrError(ErrorCodes.STORE, `this node (${this.node}) gave up ${leases.length} leases (${why}): their channels refuse calls until the leases are taken again`));
    this.#leaseEvent('leasesLost', leases, why);
  }

  // Another node held these contacts meanwhile: this node's sessions with them are stale.
  #leasesTaken(leases: Lease[]): void {
    for (const lease of leases) {
      this.#host?.closeChannel(lease.account, lease.protocol, lease.contact).catch(() => {});
    }
  }

  #reconnected(): void {
    this.#resyncAll();
  }

  /**
   * Takes the contact's lease for this node (a session advisory lock on the lease connection,
   * and the contact's fencing token one more). Rejects with ERR_OTR_CONTACT_OWNED (error.owner:
   * the owning node) when another node holds it and it did not come free within `waitMs`
   * (default 0: no waiting), and with ERR_OTR_STORE while the lease connection reconnects.
   */
  lease(account: string, protocol: string, contact: string, { waitMs = 0 }: { waitMs?: number } = {}): Promise<Lease> {
    try {
      requireName('account', account);
      requireName('protocol', protocol);
      requireName('contact', contact);
      requireInteger('waitMs', waitMs, 0, 0x7fffffff);
      if (!this.#keeper) throw new OtrError(ErrorCodes.STORE, 'the store is not open: OTR.open({ store }) first');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#keeper.acquire({ account, protocol, contact }, waitMs, () => this.owner(account, protocol, contact)).catch((error: unknown) => {
      throw storeError('cannot take a lease', error);
    });
  }

  /** The node holding the contact's lease now, if any. */
  async owner(account: string, protocol: string, contact: string): Promise<string | undefined> {
    const [, high, low] = this.#schema.lockKey(`contact\0${contactKey(account, protocol, contact)}`);
    const db = await this.#db.writer();
    const { rows } = await db.query(
      `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
       WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid = $1::oid AND l.objid = $2::oid
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [high, low],
    );
    return rows.length > 0 ? String(rows[0].application_name) : undefined;
  }

  /** Closes the contact's channel (its sessions end here) and gives its lease up. */
  async release(account: string, protocol: string, contact: string): Promise<void> {
    await this.#host?.closeChannel(account, protocol, contact).catch(() => {});
    await this.#keeper?.release({ account, protocol, contact });
  }

  /**
   * SQL statements this store has sent so far (all connections), heartbeats aside: what a
   * workload costs the database.
   */
  get statements(): number {
    return this.#db.statements;
  }

  /** Heartbeats sent on the lease connection so far (one every third of `leaseTimeoutSeconds`, whatever the workload). */
  get heartbeats(): number {
    return this.#db.heartbeats;
  }

  /** The contacts this node owns (on a live lease connection, or on hold while it reconnects). */
  leases(): Lease[] {
    return this.#keeper?.leases() ?? [];
  }

  /**
   * When the lease connection was last confirmed (ms since the epoch): the node acts for its
   * contacts only while this is younger than two thirds of `leaseTimeoutSeconds`.
   */
  get confirmedAt(): number {
    return this.#keeper?.confirmedAt ?? 0;
  }

  /** @internal */
  override async _close(): Promise<void> {
    if (this.#closed) return;
    this.#db.stopRetries();
    await this._settled().catch(() => {});
    await this.#applying;
    this.#closed = true;
    this.#keeper?.close();
    await this.#db.end();
    this.#workDir?.remove();
    this.#workDir = undefined;
  }

  // ---- import and export ----

  /**
   * Copies a Pidgin-format file set into the database: accounts whose key is not stored yet
   * (an account without a line in the instance tags file gets a new tag), and every
   * fingerprint (a non-empty trust in the file replaces the stored one; other nodes hear of
   * it). Returns what was added.
   */
  async importFiles(files: Partial<StoreFiles>): Promise<{
    /** Accounts added. */
    accounts: number;
    /** Accounts of the files already in the database (their stored key kept). */
    accountsKept: number;
    /** Fingerprint rows added. */
    fingerprints: number;
  }> {
    return importFiles(await this.#db.writer(), this.#schema, this.node, files);
  }

  /**
   * Writes the database's accounts, instance tags and fingerprints as a Pidgin-format file set
   * (mode 0600), holding the set's lock meanwhile: `ERR_OTR_LOCKED` while an `OTR` instance
   * has those files open.
   */
  async exportFiles(files: StoreFiles): Promise<{
    /** Accounts written. */
    accounts: number;
    /** Fingerprint lines written. */
    fingerprints: number;
  }> {
    return exportFiles(() => this.#db.writer(), this.#schema, files);
  }

  /** Ends the connections of a store used only for importFiles/exportFiles. */
  async end(): Promise<void> {
    if (this.#host) throw new OtrError(ErrorCodes.STORE, 'this store belongs to an OTR instance: close the OTR instead');
    await this._close();
  }
}
