// A PostgresStore node's leases (the LeaseKeeper of leases.ts), wired: to the database, over a
// lease connection whose keepalives follow the lease timeout and which also listens for trust
// hints; and to the instance, whose lease events it emits and whose stale channels it closes.
import { ErrorCodes, OtrError } from '../errors';
import type { Database } from './database';
import { type Lease, type LeaseSession, LeaseKeeper } from './leases';
import { storeError } from './pg';
import type { StoreHost } from './store';
import { contactKey } from './trust-hints';

type Contact = Pick<Lease, 'account' | 'protocol' | 'contact'>;

export interface LeaseWiringOptions {
  node: string;
  /** How long a vanished host keeps its leases, in seconds (PostgresStore's leaseTimeoutSeconds). */
  timeoutSeconds: number;
  /** The instance, once attached. */
  host: () => StoreHost | undefined;
  /** A notification on the trust channel. */
  notified(payload: string | undefined): void;
  /** Reconnected: the notifications sent meanwhile were missed. */
  reconnected(): void;
}

export class LeaseWiring {
  readonly #db: Database;
  readonly #options: LeaseWiringOptions;
  #keeper: LeaseKeeper | undefined;

  constructor(db: Database, options: LeaseWiringOptions) {
    this.#db = db;
    this.#options = options;
  }

  /** Whether open() was called. */
  get opened(): boolean {
    return this.#keeper !== undefined;
  }

  /** Opens the lease connection (listening before the store reads any row). */
  async open(): Promise<void> {
    const { node, timeoutSeconds } = this.#options;
    const schema = this.#db.schema;
    this.#keeper = new LeaseKeeper({
      node,
      timeoutSeconds,
      table: schema.table('leases'),
      lockKey: (l) => schema.lockKey(`contact\0${contactKey(l.account, l.protocol, l.contact)}`)[0],
      connect: (broken) => this.#openLeaseConnection(broken),
      lost: (leases, why) => this.#leasesLost(leases, why),
      taken: (leases) => this.#leasesTaken(leases),
      restored: (leases) => this.#leaseEvent('leasesRestored', leases),
      suspended: (leases, why) => this.#leaseEvent('leasesSuspended', leases, why),
      reconnected: () => this.#options.reconnected(),
    });
    await this.#keeper.open();
  }

  // A lease connection: keepalives from the lease timeout, and the NOTIFY channel listened to.
  async #openLeaseConnection(broken: (why: string) => void): Promise<LeaseSession> {
    const session = await this.#db.client();
    session.on('error', (error) => broken(`lease connection: ${error?.message}`));
    session.on('end', () => broken('lease connection ended'));
    session.on('notification', (message) => this.#options.notified(message.payload));
    try {
      // A node that vanishes without a word loses its leases when the server gives up on it:
      // no sooner than t seconds after it last heard from the node (docs/MULTI-NODE.md).
      const t = this.#options.timeoutSeconds;
      const interval = Math.max(1, Math.floor(t / 6));
      await session.query(`SET tcp_keepalives_idle = ${Math.max(1, t - 3 * interval)}`);
      await session.query(`SET tcp_keepalives_interval = ${interval}`);
      await session.query('SET tcp_keepalives_count = 3');
      await session.query(`SET tcp_user_timeout = ${t * 1000}`);
      await session.query(`LISTEN "${this.#db.schema.channel}"`);
    } catch (error) {
      session.destroy();
      throw error;
    }
    return session;
  }

  #leaseEvent(event: 'leasesRestored' | 'leasesSuspended' | 'leasesLost', leases: Lease[], why?: string): void {
    const host = this.#options.host();
    if (!host || host.closed) return;
    host.leaseEvent(event, leases, why ?? '');
  }

  // Given up at the renew deadline, or found taken on reconnection: the channels stay open and
  // refuse calls (ERR_OTR_NOT_OWNER) until the lease is taken again or they are closed.
  #leasesLost(leases: Lease[], why: string): void {
    this.#options
      .host()
      ?.report(
        new OtrError(
          ErrorCodes.STORE,
          `this node (${this.#options.node}) gave up ${leases.length} leases (${why}): their channels refuse calls until the leases are taken again`,
        ),
      );
    this.#leaseEvent('leasesLost', leases, why);
  }

  // Another node held these contacts meanwhile: this node's sessions with them are stale.
  #leasesTaken(leases: Lease[]): void {
    for (const lease of leases) {
      this.#options
        .host()
        ?.closeChannel(lease.account, lease.protocol, lease.contact)
        .catch(() => {});
    }
  }

  /** Takes the contact's lease (see PostgresStore.lease). */
  take(contact: Contact, waitMs: number): Promise<Lease> {
    if (!this.#keeper) return Promise.reject(new OtrError(ErrorCodes.STORE, 'the store is not open: OTR.open({ store }) first'));
    return this.#keeper
      .acquire(contact, waitMs, () => this.owner(contact))
      .catch((error: unknown) => {
        throw storeError('cannot take a lease', error);
      });
  }

  /** The node holding the contact's lease now, if any. */
  async owner({ account, protocol, contact }: Contact): Promise<string | undefined> {
    const [, high, low] = this.#db.schema.lockKey(`contact\0${contactKey(account, protocol, contact)}`);
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
  async release(contact: Contact): Promise<void> {
    await this.#options
      .host()
      ?.closeChannel(contact.account, contact.protocol, contact.contact)
      .catch(() => {});
    await this.#keeper?.release(contact);
  }

  /** Whether this node holds the contact's lease. */
  holds(contact: Contact): boolean {
    return this.#keeper?.holds(contact) ?? false;
  }

  /** Throws unless this node may open a channel to the contact. */
  requireOwner(contact: Contact): void {
    if (!this.#keeper) throw new OtrError(ErrorCodes.STORE, 'the store is not open');
    this.#keeper.requireOwner(contact);
  }

  /** Before a call acts for the contact: undefined to go on now, or a promise of when it may. */
  admit(contact: Contact): Promise<void> | undefined {
    if (!this.#keeper) return Promise.reject(new OtrError(ErrorCodes.STORE, 'the store is not open'));
    return this.#keeper.admit(contact);
  }

  /** Whether the node may act for the contact right now. */
  mayAct(contact: Contact): boolean {
    return this.#keeper?.mayAct(contact) ?? false;
  }

  /** The contacts this node owns. */
  leases(): Lease[] {
    return this.#keeper?.leases() ?? [];
  }

  /** When the lease connection was last confirmed (ms since the epoch; 0 before). */
  get confirmedAt(): number {
    return this.#keeper?.confirmedAt ?? 0;
  }

  /** Ends the lease connection (every lock goes with it). */
  close(): void {
    this.#keeper?.close();
  }
}
