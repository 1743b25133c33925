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
import { describe, rejectUnknownOptions, requireInteger, requireName, requireText } from '../validate';
import { Database } from './database';
import { type IdentityOptions, storeMissingKeys, writeWorkingCopy } from './identity';
import { LeaseWiring } from './lease-wiring';
import type { Lease } from './leases';
import { Mirror } from './mirror';
import { storeError } from './pg';
import { Renames } from './renames';
import { Schema } from './schema';
import { Store, type StoreFiles, type StoreHost, type StoreOpening } from './store';
import { exportFiles, importFiles } from './transfer';
import { TrustIn } from './trust-in';
import { TrustOut } from './trust-out';
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

  readonly #accounts: { name: string; protocol: string }[];
  readonly #identity: IdentityOptions;
  readonly #db: Database;
  readonly #mirror: Mirror;
  readonly #wiring: LeaseWiring;
  readonly #out: TrustOut;
  readonly #in: TrustIn;
  readonly #renames: Renames;
  #workDir: WorkDir | undefined;
  #host: StoreHost | undefined;
  #closed = false;

  /** Checks the options and loads `pg`; connects only when opened (or on import/export). */
  constructor(options: PostgresStoreOptions) {
    super();
    if (options === null || typeof options !== 'object')
      throw new OtrError(ErrorCodes.INVALID_ARGUMENT, `new PostgresStore() options must be an object, got ${describe(options)}`);
    rejectUnknownOptions('new PostgresStore()', options, [
      'connection',
      'prefix',
      'node',
      'accounts',
      'workDir',
      'leaseTimeoutSeconds',
    ] satisfies (keyof PostgresStoreOptions)[]);
    const { connection } = options;
    let config: Record<string, unknown>;
    if (typeof connection === 'string') config = { connectionString: requireText('connection', connection) };
    else if (connection !== null && typeof connection === 'object') config = { ...connection };
    else throw new OtrError(ErrorCodes.INVALID_ARGUMENT, 'connection must be a connection string or a pg Client configuration');
    this.prefix = options.prefix ?? 'otr_';
    if (typeof this.prefix !== 'string' || !/^[a-z_][a-z0-9_]{0,40}$/.test(this.prefix)) {
      throw new OtrError(
        ErrorCodes.INVALID_ARGUMENT,
        `prefix must be 1-41 lower-case letters, digits or '_' starting with a letter or '_', got ${JSON.stringify(this.prefix)}`,
      );
    }
    this.node = requireName('node', options.node ?? `${os.hostname()}:${process.pid}`);
    if (Buffer.byteLength(this.node) > 63)
      throw new OtrError(ErrorCodes.INVALID_ARGUMENT, 'node must be at most 63 bytes (PostgreSQL shows it as application_name)');
    this.#accounts = (options.accounts ?? []).map((a, i) => ({
      name: requireName(`accounts[${i}].name`, a?.name),
      protocol: requireName(`accounts[${i}].protocol`, a?.protocol),
    }));
    const workParent = requireText('workDir', options.workDir ?? os.tmpdir());
    this.leaseTimeoutSeconds = requireInteger('leaseTimeoutSeconds', options.leaseTimeoutSeconds ?? 10, 3, 3600);
    const schema = new Schema(this.prefix);
    this.#identity = { schema, node: this.node, workParent };
    this.#db = new Database({ connection: config, node: this.node, timeoutSeconds: this.leaseTimeoutSeconds, schema });
    const host = () => this.#host;
    const mirror = new Mirror();
    this.#mirror = mirror;
    this.#wiring = new LeaseWiring(this.#db, {
      node: this.node,
      timeoutSeconds: this.leaseTimeoutSeconds,
      host,
      notified: (payload) => this.#in.notified(payload),
      reconnected: () => this.#in.resyncAll(),
    });
    this.#out = new TrustOut(mirror, this.#db, this.node, host);
    this.#in = new TrustIn(mirror, this.#db, { node: this.node, host, closed: () => this.#closed, holds: (lease) => this.#wiring.holds(lease) });
    this.#renames = new Renames(mirror, this.#db, this.node, host, {
      holds: (lease) => this.#wiring.holds(lease),
      lease: (account, protocol, contact) => this.lease(account, protocol, contact),
      release: (account, protocol, contact) => this.release(account, protocol, contact),
    });
  }

  /** @internal */
  async _open(opening: StoreOpening): Promise<StoreFiles> {
    if (this.#wiring.opened || this.#closed) throw new OtrError(ErrorCodes.STORE, 'a PostgresStore serves one OTR instance: make a new one');
    try {
      const db = await this.#db.writer();
      // Listening before reading the rows: no change made meanwhile is missed.
      await this.#wiring.open();
      await storeMissingKeys(db, this.#identity, this.#accounts, opening, this.keysGenerated);
      const copy = await writeWorkingCopy(db, this.#identity);
      this.#workDir = copy.dir;
      this.#mirror.load(copy.fingerprints);
      return copy.files;
    } catch (error) {
      await this._close();
      throw storeError('cannot open the PostgreSQL store', error);
    }
  }

  /** @internal */
  override _attach(host: StoreHost): void {
    this.#host = host;
    this.#in.wake();
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
    this.#wiring.requireOwner({ account, protocol, contact });
  }

  /** @internal */
  override _admit(account: string, protocol: string, contact: string): Promise<void> | undefined {
    return this.#wiring.admit({ account, protocol, contact });
  }

  /** @internal */
  override _mayAct(account: string, protocol: string, contact: string): boolean {
    return this.#wiring.mayAct({ account, protocol, contact });
  }

  /** @internal */
  override _contactState(state: NativeContact): void {
    this.#out.contactState(state);
  }

  /** @internal */
  override _settled(): Promise<void> {
    return this.#mirror.settled();
  }

  /**
   * @internal A rename asked on this node takes the new name's lease first, and the old
   * name's when this node does not hold it: either owned elsewhere rejects with
   * ERR_OTR_CONTACT_OWNED, and nothing changes. A rename this node follows takes nothing.
   */
  override _beforeRename(account: string, protocol: string, from: string, to: string): Promise<void> {
    return this.#renames.before(account, protocol, from, to);
  }

  /** @internal */
  override _renameRefused(account: string, protocol: string, from: string, to: string): Promise<void> {
    return this.#renames.refused(account, protocol, from, to);
  }

  /** @internal The engine renamed a contact: its rows move with it (see renames.ts). */
  override _renamed(account: string, protocol: string, from: string, to: string): void {
    this.#renames.renamed(account, protocol, from, to);
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
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#wiring.take({ account, protocol, contact }, waitMs);
  }

  /** The node holding the contact's lease now, if any. */
  owner(account: string, protocol: string, contact: string): Promise<string | undefined> {
    return this.#wiring.owner({ account, protocol, contact });
  }

  /** Closes the contact's channel (its sessions end here) and gives its lease up. */
  release(account: string, protocol: string, contact: string): Promise<void> {
    return this.#wiring.release({ account, protocol, contact });
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
    return this.#wiring.leases();
  }

  /**
   * When the lease connection was last confirmed (ms since the epoch): the node acts for its
   * contacts only while this is younger than two thirds of `leaseTimeoutSeconds`.
   */
  get confirmedAt(): number {
    return this.#wiring.confirmedAt;
  }

  /** @internal */
  override async _close(): Promise<void> {
    if (this.#closed) return;
    this.#db.stopRetries();
    await this._settled().catch(() => {});
    await this.#in.applying;
    this.#closed = true;
    this.#wiring.close();
    await this.#db.end();
    this.#workDir?.remove();
    this.#workDir = undefined;
  }

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
    return importFiles(await this.#db.writer(), this.#db.schema, this.node, files);
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
    return exportFiles(() => this.#db.writer(), this.#db.schema, files);
  }

  /** Ends the connections of a store used only for importFiles/exportFiles. */
  async end(): Promise<void> {
    if (this.#host) throw new OtrError(ErrorCodes.STORE, 'this store belongs to an OTR instance: close the OTR instead');
    await this._close();
  }
}
