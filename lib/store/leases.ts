// The leases of a PostgresStore node: which contacts it may act for, and until when.
//
// A lease is a session-level advisory lock on the node's lease connection plus a row of the
// leases table whose token grows by one at every new owner (the fencing token). The lock lasts
// as long as the server keeps the connection's backend; a server that stops hearing from the
// node ends it after `timeoutSeconds` (TCP keepalive and tcp_user_timeout, set by the store).
// The node confirms the connection on a heartbeat (every third of that time): an answered
// query proves the backend, and so every lock of the node, was alive when the query was sent.
// The node acts for a contact only while its last confirmation is younger than the renew
// deadline (two thirds of the timeout): later than that, the server may be about to give the
// locks up, so the node stops first — it announces the leases lost at the deadline, and a call
// that finds the confirmation stale (a frozen process, a late timer) waits for a new one.
// Nobody else can hold a lease before the server drops the backend, and the server cannot
// drop it before `timeoutSeconds` have passed since it last heard from the node, which is no
// earlier than the last confirmation was sent.
//
// A broken connection (database restart, failover, network) suspends the leases: calls wait
// (until the renew deadline, then they are refused) while the node reconnects with backoff.
// Back in, each lease is taken again if no other node held it meanwhile — the lock is free and
// the token is the one this node had — and its session carries on; the others are lost.
import { ErrorCodes, OtrError } from '../errors';

/** A contact this node owns. */
export interface Lease {
  /** Our account's name. */
  account: string;
  /** Our account's protocol. */
  protocol: string;
  /** The contact owned. */
  contact: string;
  /** The node owning it (this one). */
  node: string;
  /**
   * The fencing token: grows by one each time a node takes the contact's lease, so a
   * transport that remembers the highest token it saw per contact can refuse a stale owner
   * (docs/MULTI-NODE.md).
   */
  token: number;
}

/** The lease connection as the keeper uses it (the store's serialised pg client). */
export interface LeaseSession {
  query(text: string, values?: unknown[], onSent?: () => void, heartbeat?: boolean): Promise<{ rows: Record<string, unknown>[] }>;
  /** Drops the connection at once (no goodbye: the network may be gone). */
  destroy(): void;
}

export interface LeaseKeeperOptions {
  node: string;
  timeoutSeconds: number;
  /** The leases table, quoted. */
  table: string;
  /** The advisory lock key of a contact (bigint as text). */
  lockKey(lease: Pick<Lease, 'account' | 'protocol' | 'contact'>): string;
  /** Opens a lease connection; `broken` is called once if it fails later. */
  connect(broken: (why: string) => void): Promise<LeaseSession>;
  /** The node may no longer act for these (announce; their channels refuse calls). */
  lost(leases: Lease[], why: string): void;
  /** These leases were held by another node meanwhile: their sessions here are stale. */
  taken(leases: Lease[]): void;
  /** After every reconnection: these leases (maybe none) are held again, their sessions go on. */
  restored(leases: Lease[]): void;
  /** The connection broke: these leases are on hold while the node reconnects. */
  suspended(leases: Lease[], why: string): void;
  /** Reconnected: what was announced meanwhile may have been missed. */
  reconnected(): void;
}

const key = (l: Pick<Lease, 'account' | 'protocol' | 'contact'>) => `${l.account}\0${l.protocol}\0${l.contact}`;
const MAX_WAITING = 10_000;
const RECONNECT_FIRST_MS = 100;
// The renew deadline's timer this late (or later) is taken for a process that stood still.
const LATE_TIMER_MS = 1000;
const RECONNECT_MAX_MS = 5_000;

interface Waiter {
  key: string;
  resolve(): void;
  reject(error: OtrError): void;
}

/** The leases of one node (see the top of this file). */
export class LeaseKeeper {
  readonly #o: LeaseKeeperOptions;
  /** Heartbeat period, ms. */
  readonly heartbeatMs: number;
  /** The node acts for its contacts only while its last confirmation is younger than this, ms. */
  readonly renewDeadlineMs: number;
  #session: LeaseSession | undefined;
  #state: 'live' | 'suspended' | 'closed' = 'suspended';
  // Held, on a live connection.
  #held = new Map<string, Lease>();
  // Held until the connection broke; not announced lost yet (the renew deadline has not passed).
  #onHold = new Map<string, Lease>();
  // Announced lost at the renew deadline: taken again on reconnection if nobody held them meanwhile.
  #dormant = new Map<string, Lease>();
  #acquiring = new Map<string, Promise<Lease>>();
  // When the last answered query on the lease connection was sent (both clocks: a frozen
  // process or a stopped VM may stop one of them).
  #confirmedMono = 0;
  #confirmedWall = 0;
  #heartbeat: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #beating = false;
  #doubt = false;
  #waiting: Waiter[] = [];
  // Read by the `??=` in #broken (one reconnect loop at a time), which this rule takes for a write only.
  // eslint-disable-next-line no-unused-private-class-members
  #reconnecting: Promise<void> | undefined;
  #whyBroken = 'opening';
  #generation = 0;

  constructor(options: LeaseKeeperOptions) {
    this.#o = options;
    this.heartbeatMs = Math.floor((options.timeoutSeconds * 1000) / 3);
    this.renewDeadlineMs = Math.floor((options.timeoutSeconds * 2000) / 3);
  }

  /** Opens the first lease connection. */
  async open(): Promise<void> {
    await this.#connect();
  }

  /** When the last confirmation was sent (wall clock, ms since the epoch). */
  get confirmedAt(): number {
    return this.#confirmedWall;
  }

  #fresh(): boolean {
    return this.#state === 'live' && performance.now() - this.#confirmedMono < this.renewDeadlineMs && Date.now() - this.#confirmedWall < this.renewDeadlineMs;
  }

  #confirm(mono: number, wall: number): void {
    if (mono <= this.#confirmedMono) return;
    this.#confirmedMono = mono;
    this.#confirmedWall = wall;
    this.#doubt = false;
    this.#armDeadline();
    if (this.#fresh()) this.#wake();
  }

  // A query on the lease connection; its answer confirms the connection as of its sending.
  #query(text: string, values?: unknown[], heartbeat = false): Promise<{ rows: Record<string, unknown>[] }> {
    const session = this.#session;
    if (!session || this.#state === 'closed') return Promise.reject(this.#storeError());
    let mono = 0;
    let wall = 0;
    return session
      .query(
        text,
        values,
        () => {
          mono = performance.now();
          wall = Date.now();
        },
        heartbeat,
      )
      .then((result) => {
        if (session === this.#session && this.#state === 'live') this.#confirm(mono, wall);
        return result;
      });
  }

  async #connect(): Promise<void> {
    const generation = ++this.#generation;
    const session = await this.#o.connect((why) => {
      if (generation === this.#generation) this.#broken(why);
    });
    if (this.#state === 'closed' || generation !== this.#generation) {
      session.destroy();
      throw this.#storeError();
    }
    this.#session = session;
    this.#state = 'live';
    await this.#query('SELECT 1');
    if (!this.#heartbeat) {
      this.#heartbeat = setInterval(() => this.#beat(), this.heartbeatMs);
      this.#heartbeat.unref();
    }
  }

  // `again`: even while an earlier heartbeat is unanswered (it may have been sent before a freeze).
  #beat(again = false): void {
    if ((this.#beating && !again) || this.#state !== 'live') return;
    this.#beating = true;
    this.#query('SELECT 1', undefined, true)
      .catch(() => {}) // the connection's own error ends it (see #broken)
      .finally(() => {
        this.#beating = false;
      });
  }

  #armDeadline(): void {
    // In doubt, the timer already set decides (see #deadlinePassed).
    if (this.#doubt) return;
    clearTimeout(this.#deadline);
    if (this.#state === 'closed') return;
    const left = this.renewDeadlineMs - (performance.now() - this.#confirmedMono);
    this.#deadline = setTimeout(() => this.#deadlinePassed(), Math.max(0, left) + 1);
    this.#deadline.unref();
  }

  #deadlinePassed(): void {
    if (this.#state === 'closed') return;
    if (this.#fresh()) {
      this.#armDeadline();
      return;
    }
    // A timer this late means the process stood still (SIGSTOP, a stopped VM, a long pause):
    // calls already wait (the confirmation is stale); one more heartbeat — or the reconnection
    // under way — decides. Answered, a heartbeat proves the backend, and every lock with it,
    // lived through the pause; a reconnection compares the fencing tokens.
    const late = performance.now() - this.#confirmedMono - this.renewDeadlineMs;
    if (late > LATE_TIMER_MS && !this.#doubt) {
      this.#doubt = true;
      this.#beat(true);
      this.#deadline = setTimeout(() => this.#deadlinePassed(), this.heartbeatMs);
      this.#deadline.unref();
      return;
    }
    this.#doubt = false;
    // The confirmation is late (a partition, a stalled server) or the connection is gone: the
    // server may give the locks up soon — stop acting for those contacts now.
    const why = this.#state === 'suspended' ? this.#whyBroken : `no answer from the database for ${this.renewDeadlineMs} ms`;
    const lost = [...this.#held.values(), ...this.#onHold.values()];
    for (const [k, lease] of [...this.#held, ...this.#onHold]) this.#dormant.set(k, lease);
    this.#held.clear();
    this.#onHold.clear();
    this.#whyBroken = why;
    this.#rejectWaiting(() => true);
    if (lost.length > 0) this.#o.lost(lost, why);
    if (this.#state === 'live') this.#broken(why);
  }

  // The connection is gone (or given up): every lease is on hold; reconnect.
  #broken(why: string): void {
    if (this.#state !== 'live') return;
    this.#state = 'suspended';
    this.#whyBroken = why;
    this.#generation++;
    this.#session?.destroy();
    this.#session = undefined;
    const held = [...this.#held.values()];
    for (const [k, lease] of this.#held) this.#onHold.set(k, lease);
    this.#held.clear();
    if (held.length > 0) this.#o.suspended(held, why);
    this.#armDeadline();
    this.#reconnecting ??= this.#reconnect().finally(() => {
      this.#reconnecting = undefined;
    });
  }

  async #reconnect(): Promise<void> {
    let wait = RECONNECT_FIRST_MS;
    while (this.#state === 'suspended') {
      await new Promise((resolve) => setTimeout(resolve, wait).unref());
      wait = Math.min(wait * 2, RECONNECT_MAX_MS);
      if (this.#state !== 'suspended') return;
      try {
        await this.#connect();
        await this.#retakeAll();
      } catch (error) {
        const state = this.#state as string;
        if (state === 'closed') return;
        if (state === 'live') this.#broken(`while taking the leases again: ${(error as Error)?.message ?? error}`);
        else this.#whyBroken = `reconnecting: ${(error as Error)?.message ?? error}`;
      }
    }
  }

  // Back in: each lease held (or announced lost) before is taken again when no other node
  // held it meanwhile; the rest are lost to this node.
  async #retakeAll(): Promise<void> {
    this.#o.reconnected();
    const kept: Lease[] = [];
    const taken: Lease[] = [];
    for (const [k, lease] of [...this.#onHold, ...this.#dormant]) {
      if (this.#state !== 'live') return;
      const lock = this.#o.lockKey(lease);
      const { rows } = await this.#query('SELECT pg_try_advisory_lock($1::bigint) AS ok', [lock]);
      let same = false;
      if (rows[0].ok === true) {
        const { rows: tokens } = await this.#query(`SELECT token FROM ${this.#o.table} WHERE account = $1 AND protocol = $2 AND contact = $3`, [
          lease.account,
          lease.protocol,
          lease.contact,
        ]);
        same = tokens.length === 1 && Number(tokens[0].token) === lease.token;
      }
      const wasOnHold = this.#onHold.delete(k);
      const wasDormant = this.#dormant.delete(k);
      // A lease released meanwhile is not taken back.
      if (same && (wasOnHold || wasDormant)) {
        this.#held.set(k, lease);
        kept.push(lease);
        continue;
      }
      if (rows[0].ok === true) await this.#query('SELECT pg_advisory_unlock($1::bigint)', [lock]);
      if (!wasOnHold && !wasDormant) continue;
      taken.push(lease);
      if (wasOnHold) this.#o.lost([lease], 'another node held the lease while this node was away');
    }
    this.#rejectWaiting((w) => !this.#held.has(w.key) && !this.#onHold.has(w.key));
    if (taken.length > 0) this.#o.taken(taken);
    this.#o.restored(kept);
    if (this.#fresh()) this.#wake();
  }

  // A fresh confirmation: calls waiting for a held lease go on.
  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) {
      if (this.#held.has(w.key)) w.resolve();
      else if (this.#onHold.has(w.key)) this.#waiting.push(w);
      else w.reject(this.#notOwner(w.key));
    }
  }

  #rejectWaiting(which: (w: Waiter) => boolean): void {
    const keep: Waiter[] = [];
    for (const w of this.#waiting) {
      if (which(w)) w.reject(this.#notOwner(w.key));
      else keep.push(w);
    }
    this.#waiting = keep;
  }

  #notOwner(k: string): OtrError {
    const [account, protocol, contact] = k.split('\0');
    const why = this.#dormant.has(k)
      ? `its lease was given up (${this.#whyBroken}) before another node could take it; store.lease() takes it again once the database answers`
      : 'await store.lease(account, protocol, contact) before opening its channel';
    return new OtrError(ErrorCodes.NOT_OWNER, `this node (${this.#o.node}) does not hold the lease of ${contact} (${account}, ${protocol}): ${why}`);
  }

  #storeError(): OtrError {
    return new OtrError(
      ErrorCodes.STORE,
      this.#state === 'closed' ? 'the store is closed' : `the store's lease connection is reconnecting (${this.#whyBroken}): retry once it is back`,
    );
  }

  /** Throws ERR_OTR_NOT_OWNER unless this node holds the contact's lease (or holds it on a broken connection). */
  requireOwner(lease: Pick<Lease, 'account' | 'protocol' | 'contact'>): void {
    const k = key(lease);
    if (!this.#held.has(k) && !this.#onHold.has(k)) throw this.#notOwner(k);
  }

  /**
   * Before acting for a contact: undefined when the node may act now; otherwise a promise that
   * resolves once it may (a fresh confirmation, or the lease taken again after a reconnection)
   * or rejects with ERR_OTR_NOT_OWNER.
   */
  admit(lease: Pick<Lease, 'account' | 'protocol' | 'contact'>): Promise<void> | undefined {
    const k = key(lease);
    if (!this.#held.has(k) && !this.#onHold.has(k)) return Promise.reject(this.#notOwner(k));
    if (this.#held.has(k) && this.#fresh()) return undefined;
    if (this.#waiting.length >= MAX_WAITING) {
      return Promise.reject(
        new OtrError(ErrorCodes.NOT_OWNER, `${MAX_WAITING} calls already wait for the lease connection to be confirmed: this one is refused`),
      );
    }
    this.#beat();
    return new Promise((resolve, reject) => this.#waiting.push({ key: k, resolve, reject }));
  }

  /** Whether the node may act for the contact right now (no waiting). */
  mayAct(lease: Pick<Lease, 'account' | 'protocol' | 'contact'>): boolean {
    return this.#held.has(key(lease)) && this.#fresh();
  }

  /** Whether this node holds the contact's lease (on a live or a broken connection). */
  holds(lease: Pick<Lease, 'account' | 'protocol' | 'contact'>): boolean {
    const k = key(lease);
    return this.#held.has(k) || this.#onHold.has(k);
  }

  /** The leases held (on a live or a broken connection). */
  leases(): Lease[] {
    return [...this.#held.values(), ...this.#onHold.values()];
  }

  acquire(want: Omit<Lease, 'token' | 'node'>, waitMs: number, owner: () => Promise<string | undefined>): Promise<Lease> {
    const k = key(want);
    const held = this.#held.get(k) ?? this.#onHold.get(k);
    if (held) return Promise.resolve(held);
    let acquiring = this.#acquiring.get(k);
    if (!acquiring) {
      acquiring = this.#acquire(k, want, waitMs, owner);
      this.#acquiring.set(k, acquiring);
      const done = () => this.#acquiring.delete(k);
      acquiring.then(done, done);
    }
    return acquiring;
  }

  async #acquire(k: string, want: Omit<Lease, 'token' | 'node'>, waitMs: number, owner: () => Promise<string | undefined>): Promise<Lease> {
    const deadline = Date.now() + waitMs;
    const lock = this.#o.lockKey(want);
    for (;;) {
      if (this.#state !== 'live') throw this.#storeError();
      const { rows } = await this.#query('SELECT pg_try_advisory_lock($1::bigint) AS ok', [lock]);
      if (rows[0].ok === true) {
        const { rows: tokens } = await this.#query(
          `INSERT INTO ${this.#o.table} AS l (account, protocol, contact, token, node) VALUES ($1, $2, $3, 1, $4)
           ON CONFLICT (account, protocol, contact) DO UPDATE SET token = l.token + 1, node = EXCLUDED.node, taken_at = now()
           RETURNING token`,
          [want.account, want.protocol, want.contact, this.#o.node],
        );
        const lease: Lease = { ...want, node: this.#o.node, token: Number(tokens[0].token) };
        // Taken anew after it was given up: if another node had it since, this node's session is stale.
        const stale = this.#dormant.get(k);
        this.#dormant.delete(k);
        if (stale && stale.token + 1 !== lease.token) this.#o.taken([stale]);
        this.#held.set(k, lease);
        return lease;
      }
      const name = await owner();
      const left = deadline - Date.now();
      if (left <= 0) {
        const error = new OtrError(
          ErrorCodes.CONTACT_OWNED,
          `${want.contact} (${want.account}, ${want.protocol}) is owned by node ${name ?? '(just released)'}: route its messages to that node, or retry once it releases the contact or dies`,
        );
        throw Object.assign(error, { owner: name });
      }
      // Released locks are not announced (a dead node cannot announce): ask again shortly.
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, left)));
    }
  }

  /** Gives the contact's lease up (its channel is closed by the caller first). */
  async release(lease: Pick<Lease, 'account' | 'protocol' | 'contact'>): Promise<void> {
    const k = key(lease);
    this.#dormant.delete(k);
    this.#onHold.delete(k);
    const wasHeld = this.#held.delete(k);
    this.#rejectWaiting((w) => w.key === k);
    if (wasHeld && this.#state === 'live') await this.#query('SELECT pg_advisory_unlock($1::bigint)', [this.#o.lockKey(lease)]);
  }

  /** Ends the lease connection (every lock goes with it). */
  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearInterval(this.#heartbeat);
    clearTimeout(this.#deadline);
    this.#held.clear();
    this.#onHold.clear();
    this.#dormant.clear();
    this.#rejectWaiting(() => true);
    this.#generation++;
    this.#session?.destroy();
    this.#session = undefined;
  }
}
