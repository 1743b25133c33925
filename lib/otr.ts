// The public OTR class: its options and their checks, open() and close(), accounts, stats and
// events. Its internals are in instance/ (one Instance per OTR); the public link of an account
// to it (account.ctx) is declared at the end of this file.
import { EventEmitter } from 'node:events';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Account } from './account';
import type { Contact } from './contact';
import { ErrorCodes, OtrError, fromNative } from './errors';
import { Instance } from './instance/instance';
import { newInstanceNumber, unregister } from './instance/delivery';
import { FileSetLock } from './lock';
import { poolStats, poolThreads, setPoolThreads } from './native';
import type { NativeAccount } from './native-contract';
import type { Lease } from './store/leases';
import type { Store, StoreFiles, TrustChange } from './store/store';
import { describe, rejectUnknownOptions, requireBoolean, requireInteger, requireName, requireText } from './validate';

/** Where an {@link OTR} instance keeps its files (libotr's formats, as Pidgin writes them). */
export interface OTROptions {
  /** Our DSA keys, one per account (default `otr.private_key`). Written mode 0600. */
  privkeysFile?: string;
  /** Contacts' fingerprints and our trust in them (default `otr.fingerprints`). */
  contactsFile?: string;
  /** Our instance tags, one per account (default `otr.instance_tags`). */
  instanceTagsFile?: string;
  /** The human-readable part of OTR queries for every account (see Channel's queryText). */
  queryText?: string;
  /** Instance sessions one contact may have at once (default 32). */
  maxInstancesPerContact?: number;
  /** Bytes of partial fragmented messages one contact may make us keep (default 1 MiB). */
  maxFragmentedSize?: number;
  /** The largest message read() hands to libotr, in UTF-8 bytes (default 1 MiB). */
  maxIncomingSize?: number;
  /**
   * Public-key work one contact may make us do per `keyWorkWindow` (default 30): each AKE
   * message or query it sends that starts or continues an AKE, each SMP step, each message of
   * its that makes us reply. Past it, until the window ends, its AKE messages are dropped, SMP
   * it starts is refused and nothing it sends is answered, with one onEvent
   * (RCVDMSG_GENERAL_ERR) per window. Data messages are still decrypted.
   */
  maxKeyWorkPerContact?: number;
  /** The window of maxKeyWorkPerContact, in milliseconds (default 10,000). */
  keyWorkWindow?: number;
  /**
   * At most this many contacts with an open channel (default: no limit). Opening one more
   * frees the least recently used contact with no call in flight, preferring one with nothing
   * to lose (see docs/INTERPRETATION.md): an encrypted one is sent the OTR disconnect message
   * first, and its name keeps a tombstone so the next channel to it never sends in clear.
   * Emits 'contactEvicted' with it.
   */
  maxContacts?: number;
  /**
   * A contact with an open channel and no call for this many milliseconds is freed as
   * maxContacts frees one (its encrypted sessions ended; default 0: never).
   */
  idleSessionTimeout?: number;
  /** An evicted contact's unverified fingerprints are forgotten too (default false). */
  evictUnverifiedFingerprints?: boolean;
  /**
   * Sizes the process-wide pool of threads that every OTR instance runs its libotr work on
   * (the same as calling setThreads(threads) first). Default: os.availableParallelism(), set
   * when the first instance is made.
   */
  threads?: number;
}

/**
 * How many threads run libotr's work, for every OTR instance of the process together
 * (default os.availableParallelism()). Work for different contacts runs on them in parallel;
 * one contact's calls still run one at a time, in order.
 */
export function setThreads(threads: number): void {
  setPoolThreads(requireInteger('threads', threads, 1, 1024));
}

/** One thread of the process-wide pool, in {@link OTRStats}. */
export interface PoolThreadStats {
  /** Milliseconds spent running libotr work since the thread started. */
  busyMs: number;
  /** Tasks it has run. */
  tasks: number;
}

/** What otr.stats() returns: cheap to read (no libotr call), meant to be polled and graphed. */
export interface OTRStats {
  /** The process-wide pool (shared by every instance), one entry per thread. */
  threads: PoolThreadStats[];
  /** Work queued in the pool for every instance, not yet started. */
  poolQueued: number;
  /** This instance's calls waiting to start. */
  queued: number;
  /**
   * This instance's calls running on a pool thread now. A call leaves `running` (and is counted
   * in `jobs`) before its result is handed over: once its promise has settled, it is not here.
   */
  running: number;
  /** Calls whose promise has not settled yet (queued, running, or results on their way). */
  pending: number;
  /** Contacts libotr keeps state for. */
  contacts: number;
  /** Names of private contacts that were freed, remembered so their next channel starts Finished (at most 65,536). */
  tombstones: number;
  /** Open channels. */
  channels: number;
  /** Encrypted sessions among the contacts' instances. */
  sessions: number;
  /** libotr user states: one that holds every contact, plus one per thread that ran this instance's work at once. */
  userStates: number;
  /** Calls finished. */
  jobs: number;
  /** Hand-overs of finished results to JavaScript. */
  deliveries: number;
  /** Callbacks those hand-overs carried. */
  callbacks: number;
}

/** The bounds an {@link OTR} instance applies to each contact (from its options). */
export interface Limits {
  /** Instance sessions one contact may have at once. */
  maxInstancesPerContact: number;
  /** Bytes of partial fragmented messages one contact may make us keep. */
  maxFragmentedSize: number;
  /** The largest message read() hands to libotr, in UTF-8 bytes. */
  maxIncomingSize: number;
  /** Public-key work (AKE messages, SMP steps, replies) one contact may cause per keyWorkWindow. */
  maxKeyWorkPerContact: number;
  /** Its window, in milliseconds. */
  keyWorkWindow: number;
}

/** OTR.open(): the options of the constructor, and where the identity and trust are kept. */
export interface OpenOptions extends Omit<OTROptions, 'privkeysFile' | 'contactsFile' | 'instanceTagsFile'> {
  /** Default: a FileStore over the files named in the options (as the constructor). */
  store?: Store;
  /** Without a store: as the constructor's. With one: not allowed (the store names the files). */
  privkeysFile?: string;
  /** Without a store: as the constructor's. With one: not allowed. */
  contactsFile?: string;
  /** Without a store: as the constructor's. With one: not allowed. */
  instanceTagsFile?: string;
}

/** Options of {@link OTR.close}. */
export interface CloseOptions {
  /** Tell every contact in an encrypted session that we are leaving (through onWrite) first. */
  endSessions?: boolean;
}

// Every option name, checked against the interfaces: a misspelt one is refused, not ignored.
const OTR_OPTION_NAMES = Object.keys({
  privkeysFile: true,
  contactsFile: true,
  instanceTagsFile: true,
  queryText: true,
  maxInstancesPerContact: true,
  maxFragmentedSize: true,
  maxIncomingSize: true,
  maxKeyWorkPerContact: true,
  keyWorkWindow: true,
  maxContacts: true,
  idleSessionTimeout: true,
  evictUnverifiedFingerprints: true,
  threads: true,
} satisfies Record<keyof OTROptions, true>) as (keyof OTROptions)[];
const OPEN_OPTION_NAMES: (keyof OpenOptions)[] = [...OTR_OPTION_NAMES, 'store'];
const CLOSE_OPTION_NAMES = Object.keys({ endSessions: true } satisfies Record<keyof CloseOptions, true>);

const MiB = 1024 * 1024;

/** What the constructor could not load: lines of the fingerprints file it skipped. */
export interface LoadReport {
  /** Each line that could not be used: its file, line number and why. */
  skipped: {
    /** The file. */
    file: string;
    /** Its line number (from 1). */
    line: number;
    /** Why it was skipped. */
    reason: string;
  }[];
  /** Dated copies of the files as they were, made before anything rewrites them. */
  copies: string[];
}

// An OTR dropped without close(): forget it and release its files' lock.
const finalizer = new FinalizationRegistry<{ number: number; lock: FileSetLock }>(({ number, lock }) => {
  unregister(number);
  lock.release();
});

/** The events an {@link OTR} instance emits, for `on()`, `once()` and `emit()` typing. */
export interface OTREvents {
  /**
   * An error no promise was waiting for: a failed background write, a callback that threw
   * while no call of the caller was pending. Without a listener it becomes a process warning.
   */
  error: [error: OtrError];
  /**
   * A contact was freed by the library: to stay within `maxContacts`, after `idleSessionTimeout`,
   * or because a rename took its name (it had nothing to lose). See {@link OTROptions.maxContacts}.
   */
  contactEvicted: [contact: Contact];
  /**
   * With a shared store (PostgresStore): a contact's fingerprint was added, its trust changed
   * or it was forgotten, here (`origin: 'local'`, once stored) or on another node
   * (`origin: 'remote'`, once applied to this instance's live state).
   */
  trustChanged: [change: TrustChange];
  /**
   * With a PostgresStore: this node gave these contacts' leases up — its lease connection was
   * not confirmed within the renew deadline (before any other node can take them), or another
   * node held them while this node was away. Their channels refuse calls with
   * ERR_OTR_NOT_OWNER until `store.lease()` takes them again; those another node held
   * meanwhile are closed (their sessions here are stale). See docs/MULTI-NODE.md.
   */
  leasesLost: [leases: Lease[], why: string];
  /**
   * With a PostgresStore: the lease connection broke (database restart, failover, network);
   * calls for these contacts wait while the node reconnects by itself, until the renew
   * deadline ('leasesLost') or until it is back ('leasesRestored').
   */
  leasesSuspended: [leases: Lease[], why: string];
  /** With a PostgresStore: after every reconnection of the lease connection, the leases held again (maybe none): their sessions go on. */
  leasesRestored: [leases: Lease[]];
}

/**
 * An OTR context: its files, accounts and channels, over libotr user states whose work runs
 * on the process's shared threads (see {@link setThreads}). Emits `'error'` ({@link OTREvents}).
 */
export class OTR extends EventEmitter<OTREvents> {
  /** The private key file, as given (or the default). */
  readonly privkeysFile: string;
  /** The fingerprints file, as given (or the default). */
  readonly contactsFile: string;
  /** The instance tags file, as given (or the default). */
  readonly instanceTagsFile: string;
  /** The bounds on what a contact's messages can make this instance keep. */
  readonly limits: Readonly<Limits>;
  /** At most this many contacts with an open channel (0: no limit); see OTROptions. */
  readonly maxContacts: number;
  /** Milliseconds without a call after which a contact is freed (0: never); see OTROptions. */
  readonly idleSessionTimeout: number;
  /** Whether an evicted contact's unverified fingerprints are forgotten too. */
  readonly evictUnverifiedFingerprints: boolean;
  /** Lines the constructor skipped (each is also emitted as an 'error' right after it returns). */
  readonly loadReport: LoadReport = { skipped: [], copies: [] };

  // The internals: the engine, its calls and deliveries, and what the public classes ask of it.
  readonly #instance: Instance;
  #accountRequests = new Map<string, Promise<Account>>();

  /**
   * Opens an OTR instance over a store: `store` prepares the files the engine loads (a
   * PostgresStore makes them from the database) and is told of every change of fingerprints
   * and trust. Without a store it is `new OTR(options)`.
   *
   * Resolves with the instance once the store is open and the files are loaded (accounts and
   * contacts visible, as after the constructor). Rejects with what the constructor throws,
   * ERR_OTR_STORE when the store cannot be opened, ERR_OTR_INVALID_ARGUMENT for a wrong or
   * unknown option (before the store is touched); the store is closed again on failure.
   */
  static async open(options: OpenOptions = {}): Promise<OTR> {
    if (options === null || typeof options !== 'object')
      throw new OtrError(ErrorCodes.INVALID_ARGUMENT, `OTR.open() options must be an object, got ${describe(options)}`);
    rejectUnknownOptions('OTR.open()', options, OPEN_OPTION_NAMES);
    const { store, ...rest } = options;
    if (store === undefined) return new OTR(rest);
    if (rest.privkeysFile !== undefined || rest.contactsFile !== undefined || rest.instanceTagsFile !== undefined) {
      throw new OtrError(ErrorCodes.INVALID_ARGUMENT, 'with a store, the store names the files: leave out privkeysFile, contactsFile and instanceTagsFile');
    }
    const files = await store._open({ makeKey });
    let otr: OTR;
    try {
      otr = new OTR({ ...rest, ...files });
    } catch (error) {
      await store._close().catch(() => {});
      throw error;
    }
    otr.#instance.attachStore(store);
    return otr;
  }

  /** Where identity and trust are kept (undefined: the files named by the constructor's options). */
  get store(): Store | undefined {
    return this.#instance.store;
  }

  /**
   * Reads the three files (missing ones are empty) and takes their lock. Throws an
   * {@link OtrError}: `ERR_OTR_PRIVKEY_FILE` (and the other file codes) for a file that exists
   * but cannot be used, `ERR_OTR_LOCKED` while another instance holds the files.
   */
  constructor(options: OTROptions = {}) {
    super();
    if (options === null || typeof options !== 'object')
      throw new OtrError(ErrorCodes.INVALID_ARGUMENT, `new OTR() options must be an object, got ${describe(options)}`);
    rejectUnknownOptions('new OTR()', options, OTR_OPTION_NAMES);
    this.privkeysFile = requireText('privkeysFile', options.privkeysFile ?? 'otr.private_key');
    this.contactsFile = requireText('contactsFile', options.contactsFile ?? 'otr.fingerprints');
    this.instanceTagsFile = requireText('instanceTagsFile', options.instanceTagsFile ?? 'otr.instance_tags');
    const queryText = options.queryText === undefined ? undefined : requireText('queryText', options.queryText, { allowEmpty: true });
    this.limits = Object.freeze({
      maxInstancesPerContact: requireInteger('maxInstancesPerContact', options.maxInstancesPerContact ?? 32, 1, 0xffff),
      maxFragmentedSize: requireInteger('maxFragmentedSize', options.maxFragmentedSize ?? MiB, 1, 0xffffffff),
      maxIncomingSize: requireInteger('maxIncomingSize', options.maxIncomingSize ?? MiB, 1, 0xffffffff),
      maxKeyWorkPerContact: requireInteger('maxKeyWorkPerContact', options.maxKeyWorkPerContact ?? 30, 1, 0xffffffff),
      keyWorkWindow: requireInteger('keyWorkWindow', options.keyWorkWindow ?? 10_000, 1, 0xffffffff),
    });
    this.maxContacts = requireInteger('maxContacts', options.maxContacts ?? 0, 0, 0xffffffff);
    this.idleSessionTimeout = requireInteger('idleSessionTimeout', options.idleSessionTimeout ?? 0, 0, 0x7fffffff);
    this.evictUnverifiedFingerprints = requireBoolean('evictUnverifiedFingerprints', options.evictUnverifiedFingerprints ?? false);
    if (options.threads !== undefined) setThreads(options.threads);
    const number = newInstanceNumber();
    // One writer per file set, held until close(): a second instance on these files fails
    // here with ERR_OTR_LOCKED instead of silently undoing this one's writes.
    const lock = FileSetLock.acquire([
      { file: this.privkeysFile, code: ErrorCodes.PRIVKEY_FILE },
      { file: this.contactsFile, code: ErrorCodes.FINGERPRINTS_FILE },
      { file: this.instanceTagsFile, code: ErrorCodes.INSTAG_FILE },
    ]);
    // Reads the three files now (a file that cannot be used throws here, before anything
    // could replace it), so accounts and contacts are visible as soon as this returns.
    try {
      if (poolThreads() === 0) setPoolThreads(os.availableParallelism());
      const { maxKeyWorkPerContact, keyWorkWindow, ...bounds } = this.limits;
      this.#instance = new Instance(this, {
        number,
        files: {
          privkeys: path.resolve(this.privkeysFile),
          fingerprints: path.resolve(this.contactsFile),
          instags: path.resolve(this.instanceTagsFile),
        },
        limits: { ...bounds, keyWorkPerWindow: maxKeyWorkPerContact, keyWorkWindowMs: keyWorkWindow },
        lock,
        maxContacts: this.maxContacts,
        idleSessionTimeout: this.idleSessionTimeout,
        evictUnverifiedFingerprints: this.evictUnverifiedFingerprints,
        loadSkipped: (line, reason, copy) => {
          this.loadReport.skipped.push({ file: this.contactsFile, line, reason });
          if (!this.loadReport.copies.includes(copy)) this.loadReport.copies.push(copy);
        },
      });
    } catch (error) {
      lock.release();
      throw fromNative(error);
    }
    this.#instance.queryText = queryText;
    finalizer.register(this, { number, lock });
    // All of it now, however long: the accounts and contacts are known when the constructor returns.
    this.#instance.loadState();
    if (this.loadReport.skipped.length > 0) {
      const copy = this.loadReport.copies[0];
      const problems = this.loadReport.skipped.map(
        ({ file, line, reason }) =>
          new OtrError(ErrorCodes.FINGERPRINTS_FILE, `${file} line ${line} skipped (${reason}); the original file is kept as ${copy}`),
      );
      // After the constructor returns, so a listener added right after it hears them.
      process.nextTick(() => problems.forEach((problem) => this.#instance.report(problem)));
    }
  }

  /**
   * Finds or creates the account. Resolves with it at once when it has a key; otherwise once
   * a DSA key has been generated (off the JS thread: a second or more) and written to
   * `privkeysFile`, mode 0600. Concurrent calls for one account share one generation.
   * Rejects with ERR_OTR_INVALID_ARGUMENT for a bad name, ERR_OTR_CLOSED after close(),
   * ERR_OTR_KEYGEN or ERR_OTR_FILE_WRITE when the key cannot be made or kept, ERR_OTR_STORE
   * when a shared store does not serve the account.
   */
  async account(name: string, protocol: string): Promise<Account> {
    requireName('name', name);
    requireName('protocol', protocol);
    const key = `${name}\0${protocol}`;
    const known = this.#instance.findAccount(name, protocol);
    if (known) {
      this.#instance.ensureOpen();
      return known;
    }
    let request = this.#accountRequests.get(key);
    if (!request) {
      this.#instance.store?._allowsNewAccount(name, protocol);
      request = this.#instance
        .call((job, handle) => handle.ensureAccount(job, name, protocol))
        .then((value) => this.#instance.accountFromNative(value as NativeAccount));
      this.#accountRequests.set(key, request);
      const forget = () => this.#accountRequests.delete(key);
      request.then(forget, forget);
    }
    return request;
  }

  /** The account if it has a key already; never generates one. */
  findAccount(name: string, protocol: string): Account | undefined {
    requireName('name', name);
    requireName('protocol', protocol);
    return this.#instance.findAccount(name, protocol);
  }

  /** Every account with a key, in the order they became known. */
  accounts(): Account[] {
    return this.#instance.accounts();
  }

  /** The human-readable part of OTR queries, unless an account or channel sets its own. */
  get queryText(): string | undefined {
    return this.#instance.queryText;
  }

  /** Sets the default query text for every account (undefined: libotr's or the built-in one). */
  set queryText(text: string | undefined) {
    this.#instance.queryText = text === undefined ? undefined : requireText('queryText', text, { allowEmpty: true });
  }

  /**
   * Finishes queued work, writes the files, frees native memory. Later calls reject. With
   * `endSessions`, every contact in an encrypted session is first sent the OTR disconnect
   * message (through its channel's onWrite), as Pidgin does when it quits.
   *
   * Resolves once every call made before it has settled, the files are written, the lock is
   * released (and a store closed). Idempotent: every later call, and `channel.close()` of its
   * channels, returns the same promise. It rejects only when the last write of the files
   * fails (ERR_OTR_FILE_WRITE) — the instance is closed all the same — or, without closing
   * anything, for wrong options. Writes still waiting for an encrypted session are reported
   * as CONNECTION_ENDED events; SMP exchanges under way end (`'ended'`).
   */
  close(options: CloseOptions = {}): Promise<void> {
    const closing = this.#instance.closing;
    if (closing) return closing;
    let endSessions: boolean;
    try {
      if (options === null || typeof options !== 'object')
        throw new OtrError(ErrorCodes.INVALID_ARGUMENT, `otr.close() options must be an object, got ${describe(options)}`);
      rejectUnknownOptions('otr.close()', options, CLOSE_OPTION_NAMES);
      endSessions = requireBoolean('endSessions', options.endSessions ?? false);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#instance.close(endSessions);
  }

  /**
   * Calls made and not yet settled: the depth of this instance's queues. It is not bounded by
   * the library (every call's promise is the caller's backpressure); a bridge watches it to
   * stop reading its socket while the threads catch up.
   */
  get pendingCalls(): number {
    return this.#instance.pendingCalls;
  }

  /** Figures for operators (see OTRStats); throws ERR_OTR_CLOSED after close(). */
  stats(): OTRStats {
    const own = this.#instance.engineStats();
    const pool = poolStats();
    return {
      threads: pool.busyNs.map((busyNs, i) => ({ busyMs: busyNs / 1e6, tasks: pool.tasks[i] })),
      poolQueued: pool.queued,
      queued: own.queued,
      running: own.running,
      pending: this.#instance.pendingCalls,
      contacts: own.contacts,
      tombstones: own.tombstones,
      channels: own.channels,
      sessions: own.sessions,
      userStates: own.userStates,
      jobs: own.jobs,
      deliveries: own.deliveries,
      callbacks: own.effects,
    };
  }

  /** True once {@link OTR.close} was called. */
  get closed(): boolean {
    return this.#instance.closed;
  }
}

// A key made as account() makes one, in files of its own: a store makes its accounts' keys so.
async function makeKey(files: StoreFiles, account: string, protocol: string): Promise<void> {
  const otr = new OTR(files);
  try {
    await otr.account(account, protocol);
  } finally {
    await otr.close();
  }
}

declare module './account' {
  interface Account {
    /** The {@link OTR} instance the account belongs to. */
    readonly ctx: OTR;
  }
}
