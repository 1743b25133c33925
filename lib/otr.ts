import { EventEmitter } from 'node:events';
import * as os from 'node:os';
import * as path from 'node:path';
import { Account } from './account';
import type { Contact } from './contact';
import type { Channel } from './channel';
import { ErrorCodes, OtrError, fromNative } from './errors';
import { FileSetLock } from './lock';
import { createHandle, poolStats, poolThreads, setPoolThreads, type NativeHandle } from './native';
import {
  BATCH_SLOTS,
  BatchFlag,
  BatchSlot,
  ChannelOp,
  ContactFlag,
  EFFECT_SLOTS,
  EffectKind,
  SessionStatus,
  decodeEffect,
  decodeQuery,
  type ChannelOpArgs,
  type ChannelOpResult,
  type Effect,
  type NativeAccount,
  type NativeContact,
  type Query,
} from './native-contract';
import type { Lease } from './store/leases';
import type { Store, StoreFiles, StoreHost, TrustChange } from './store/store';
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

interface PendingCall {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  callbackError?: unknown;
  channel?: Channel; // whose call it is: a channel with calls in flight is never evicted
  // Run when the call succeeds, before its promise resolves and before any later delivery is applied.
  done?: () => void;
}

// Instances reachable from the addon's dispatcher. Weak while idle, so an OTR nobody holds
// can be collected; strong while calls are in flight, so their promises always settle.
const instances = new Map<number, WeakRef<OTR>>();
const busy = new Set<OTR>();
let nextInstance = 1;

// How long results are applied in one turn of the event loop before the rest waits for the
// next (see OTR._deliver).
const DELIVERY_SLICE_MS = 0.5;

// Whether a delivery ends with a question a libotr call waits on (only its last batch can).
function asksForValue(numbers: Float64Array, count: number): boolean {
  let at = 0;
  let queryAt = -1;
  while (at < count) {
    queryAt = numbers[at + BatchSlot.Query];
    at += BATCH_SLOTS + numbers[at + BatchSlot.Effects] * EFFECT_SLOTS;
  }
  return queryAt >= 0;
}

function dispatch(instance: number, numbers: Float64Array, count: number, ...values: unknown[]): unknown {
  return instances.get(instance)?.deref()?._deliver(numbers, count, values);
}

// An OTR dropped without close(): forget it and release its files' lock.
const finalizer = new FinalizationRegistry<{ instance: number; lock: FileSetLock }>(({ instance, lock }) => {
  instances.delete(instance);
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

  #handle: NativeHandle | undefined;
  #instance: number;
  #nextJob = 1;
  #calls = new Map<number, PendingCall>();
  #accounts = new Map<string, Account>();
  #accountRequests = new Map<string, Promise<Account>>();
  // Contacts in the fingerprints file of an account that has no key yet: shown once it does.
  #contactsWithoutAccount = new Map<string, Map<string, NativeContact>>();
  #channels = new Map<number, Channel>();
  // Open channels, least recently used first, with when each was last used (kept only with
  // maxContacts or idleSessionTimeout).
  #recent = new Map<Channel, number>();
  #idleTimer: NodeJS.Timeout | undefined;
  #nextChannel = 1;
  // Every live Contact by its id (see Contact._id): the addon's states name them so.
  #contactIds = new Map<number, Contact>();
  #nextContactId = 1;
  #closing: Promise<void> | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #pollChannel: Channel | undefined;
  #queryText: string | undefined;
  #lock: FileSetLock;
  #store: Store | undefined;

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
    if (options === null || typeof options !== 'object') throw new OtrError(ErrorCodes.INVALID_ARGUMENT, `OTR.open() options must be an object, got ${describe(options)}`);
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
    otr.#store = store;
    store._attach(otr.#storeHost());
    return otr;
  }

  // What the store asks of this instance, by names.
  #storeHost(): StoreHost {
    const otr = this;
    const contact = (account: string, protocol: string, name: string) => otr.findAccount(account, protocol)?.findContact(name);
    return {
      get closed() {
        return otr.closed;
      },
      report: (error) => otr._report(error),
      trustChanged: (change) => otr.emit('trustChanged', change),
      leaseEvent: (event, leases, why) => (event === 'leasesRestored' ? otr.emit(event, leases) : otr.emit(event, leases, why)),
      hasAccount: (account, protocol) => otr.findAccount(account, protocol) !== undefined,
      hasIdleContact: (account, protocol, name) => {
        const known = contact(account, protocol, name);
        return known !== undefined && !known.existingChannel;
      },
      renameContact: (account, protocol, from, to) => contact(account, protocol, from)?.rename(to) ?? Promise.resolve(),
      closeChannel: (account, protocol, name) => contact(account, protocol, name)?.existingChannel?.close() ?? Promise.resolve(),
      showContact: (account, protocol, name) => void otr.findAccount(account, protocol)?._contactFromNative(name),
      call: (submit) => otr._call(submit),
    };
  }

  /** Where identity and trust are kept (undefined: the files named by the constructor's options). */
  get store(): Store | undefined {
    return this.#store;
  }

  /**
   * Reads the three files (missing ones are empty) and takes their lock. Throws an
   * {@link OtrError}: `ERR_OTR_PRIVKEY_FILE` (and the other file codes) for a file that exists
   * but cannot be used, `ERR_OTR_LOCKED` while another instance holds the files.
   */
  constructor(options: OTROptions = {}) {
    super();
    if (options === null || typeof options !== 'object') throw new OtrError(ErrorCodes.INVALID_ARGUMENT, `new OTR() options must be an object, got ${describe(options)}`);
    rejectUnknownOptions('new OTR()', options, OTR_OPTION_NAMES);
    this.privkeysFile = requireText('privkeysFile', options.privkeysFile ?? 'otr.private_key');
    this.contactsFile = requireText('contactsFile', options.contactsFile ?? 'otr.fingerprints');
    this.instanceTagsFile = requireText('instanceTagsFile', options.instanceTagsFile ?? 'otr.instance_tags');
    this.queryText = options.queryText;
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
    this.#instance = nextInstance++;
    // One writer per file set, held until close(): a second instance on these files fails
    // here with ERR_OTR_LOCKED instead of silently undoing this one's writes.
    this.#lock = FileSetLock.acquire([
      { file: this.privkeysFile, code: ErrorCodes.PRIVKEY_FILE },
      { file: this.contactsFile, code: ErrorCodes.FINGERPRINTS_FILE },
      { file: this.instanceTagsFile, code: ErrorCodes.INSTAG_FILE },
    ]);
    // Reads the three files now (a file that cannot be used throws here, before anything
    // could replace it), so accounts and contacts are visible as soon as this returns.
    try {
      if (poolThreads() === 0) setPoolThreads(os.availableParallelism());
      const { maxKeyWorkPerContact, keyWorkWindow, ...bounds } = this.limits;
      this.#handle = createHandle(this.#instance, dispatch, {
        privkeys: path.resolve(this.privkeysFile),
        fingerprints: path.resolve(this.contactsFile),
        instags: path.resolve(this.instanceTagsFile),
      }, { ...bounds, keyWorkPerWindow: maxKeyWorkPerContact, keyWorkWindowMs: keyWorkWindow });
    } catch (error) {
      this.#lock.release();
      throw fromNative(error);
    }
    instances.set(this.#instance, new WeakRef(this));
    finalizer.register(this, { instance: this.#instance, lock: this.#lock });
    // All of it now, however long: the accounts and contacts are known when the constructor returns.
    const [numbers, count, values] = this.#handle.takeLoadedState();
    this.#applyBatches(numbers, count, values, Infinity);
    if (this.loadReport.skipped.length > 0) {
      const copy = this.loadReport.copies[0];
      const problems = this.loadReport.skipped.map(
        ({ file, line, reason }) =>
          new OtrError(ErrorCodes.FINGERPRINTS_FILE, `${file} line ${line} skipped (${reason}); the original file is kept as ${copy}`),
      );
      // After the constructor returns, so a listener added right after it hears them.
      process.nextTick(() => problems.forEach((problem) => this._report(problem)));
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
    const known = this.#accounts.get(key);
    if (known) {
      this._ensureOpen();
      return known;
    }
    let request = this.#accountRequests.get(key);
    if (!request) {
      this.#store?._allowsNewAccount(name, protocol);
      request = this._call((job, handle) => handle.ensureAccount(job, name, protocol)).then(
        (value) => this._accountFromNative(value as NativeAccount),
      );
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
    return this.#accounts.get(`${name}\0${protocol}`);
  }

  /** Every account with a key, in the order they became known. */
  accounts(): Account[] {
    return [...this.#accounts.values()];
  }

  /** The human-readable part of OTR queries, unless an account or channel sets its own. */
  get queryText(): string | undefined {
    return this.#queryText;
  }

  /** Sets the default query text for every account (undefined: libotr's or the built-in one). */
  set queryText(text: string | undefined) {
    this.#queryText = text === undefined ? undefined : requireText('queryText', text, { allowEmpty: true });
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
    if (!this.#closing) {
      let endSessions: boolean;
      try {
        if (options === null || typeof options !== 'object') throw new OtrError(ErrorCodes.INVALID_ARGUMENT, `otr.close() options must be an object, got ${describe(options)}`);
        rejectUnknownOptions('otr.close()', options, CLOSE_OPTION_NAMES);
        endSessions = requireBoolean('endSessions', options.endSessions ?? false);
      } catch (error) {
        return Promise.reject(error);
      }
      for (const channel of this.#channels.values()) channel._stopRetries();
      const handle = this.#handle;
      const store = this.#store;
      // With a shared store, the OTR disconnect goes only to contacts this node may act for now.
      if (store && endSessions) {
        for (const channel of [...this.#channels.values()]) {
          if (!channel._closed && !store._mayAct(channel.account.name, channel.account.protocol, channel.contact.name)) {
            channel._close(`the channel to ${channel.contact.name} is closed`, false, false).catch(() => {});
          }
        }
      }
      const closed = handle
        ? this._call((job, h) => h.close(job, endSessions), true).then(
            () => this.#dispose(),
            (error: unknown) => {
              this.#dispose();
              throw fromNative(error);
            },
          )
        : Promise.resolve();
      this.#closing = store ? closed.finally(() => store._close()) : closed;
    }
    return this.#closing;
  }

  /**
   * Calls made and not yet settled: the depth of this instance's queues. It is not bounded by
   * the library (every call's promise is the caller's backpressure); a bridge watches it to
   * stop reading its socket while the threads catch up.
   */
  get pendingCalls(): number {
    return this.#calls.size;
  }

  /** Figures for operators (see OTRStats); throws ERR_OTR_CLOSED after close(). */
  stats(): OTRStats {
    this._ensureOpen();
    const own = this.#handle!.stats();
    const pool = poolStats();
    return {
      threads: pool.busyNs.map((busyNs, i) => ({ busyMs: busyNs / 1e6, tasks: pool.tasks[i] })),
      poolQueued: pool.queued,
      queued: own.queued,
      running: own.running,
      pending: this.#calls.size,
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
    return this.#closing !== undefined;
  }

  #dispose(): void {
    this.#setPollTimer(0, undefined);
    if (this.#idleTimer) clearInterval(this.#idleTimer);
    this.#idleTimer = undefined;
    const handle = this.#handle;
    this.#handle = undefined;
    handle?.dispose();
    for (const channel of this.#channels.values()) channel._endSmp('ended');
    this.#lock.release();
    busy.delete(this);
    instances.delete(this.#instance);
  }

  /** @internal Queues one native job; the promise settles when its batch is done. */
  _call(submit: (job: number, handle: NativeHandle) => void, closing = false, channel?: Channel, done?: () => void): Promise<unknown> {
    if (!this.#handle || (this.#closing && !closing)) {
      return Promise.reject(new OtrError(ErrorCodes.CLOSED, 'this OTR instance is closed'));
    }
    const job = this.#nextJob++;
    if (this.#nextJob > 0xffffffff) this.#nextJob = 1;
    if (channel) channel._inFlight++;
    return new Promise((resolve, reject) => {
      this.#calls.set(job, { resolve, reject, channel, done });
      busy.add(this);
      try {
        submit(job, this.#handle!);
      } catch (error) {
        this.#calls.delete(job);
        if (channel) channel._inFlight--;
        if (this.#calls.size === 0) busy.delete(this);
        reject(fromNative(error));
      }
    });
  }

  /** @internal Settles when the store holds every change reported so far. */
  _storeSettled(): Promise<void> {
    return this.#store ? this.#store._settled() : Promise.resolve();
  }

  /** @internal */
  _ensureOpen(): void {
    if (!this.#handle || this.#closing) throw new OtrError(ErrorCodes.CLOSED, 'this OTR instance is closed');
  }

  /** @internal `done` runs once the call succeeded, before anything delivered after it (see PendingCall). */
  _channelOp<O extends ChannelOp>(channel: Channel, op: O, args: ChannelOpArgs[O], done?: () => void): Promise<ChannelOpResult[O]> {
    if (channel._closed) return Promise.reject(new OtrError(ErrorCodes.CLOSED, channel._closed));
    // With a shared store, a call acts for the contact only while this node's lease is
    // confirmed; calls that wait keep their order, and later ones queue behind them.
    const admitted = channel._admission ?? this.#store?._admit(channel.account.name, channel.account.protocol, channel.contact.name);
    if (admitted) {
      channel._admission = admitted;
      channel._admissionWaiting++;
      const admittedNow = () => {
        if (--channel._admissionWaiting === 0) channel._admission = undefined;
      };
      return admitted.then(
        () => {
          admittedNow();
          if (channel._closed) throw new OtrError(ErrorCodes.CLOSED, channel._closed);
          return this.#submitOp(channel, op, args, done);
        },
        (error: unknown) => {
          admittedNow();
          throw error;
        },
      );
    }
    return this.#submitOp(channel, op, args, done);
  }

  #submitOp<O extends ChannelOp>(channel: Channel, op: O, args: ChannelOpArgs[O], done?: () => void): Promise<ChannelOpResult[O]> {
    if (this.#recent.delete(channel)) this.#recent.set(channel, performance.now());
    return this._call((job, handle) => handle.channelOp(job, channel._id, op, ...args), false, channel, done) as Promise<ChannelOpResult[O]>;
  }

  /** @internal */
  _registerChannel(channel: Channel, open: (job: number, handle: NativeHandle, id: number) => void): number {
    this._ensureOpen();
    const id = this.#nextChannel++;
    this.#channels.set(id, channel);
    this._call((job, handle) => open(job, handle, id)).catch((error: unknown) => {
      // The addon keeps no record of it (one channel per contact): calls on it reject.
      channel._closedByAddon(`the channel to ${channel.contact.name} could not be opened: ${(error as Error)?.message ?? error}`);
      this._report(error);
    });
    if (this.maxContacts > 0 || this.idleSessionTimeout > 0) {
      this.#recent.set(channel, performance.now());
      this.#evictOverCap(channel);
      this.#armIdleTimer();
    }
    return id;
  }

  /** @internal A new Contact's id (never reused). */
  _newContactId(): number {
    return this.#nextContactId++;
  }

  /** @internal */
  _contactAdded(contact: Contact): void {
    this.#contactIds.set(contact._id, contact);
  }

  /** @internal */
  _contactRemoved(contact: Contact): void {
    if (this.#contactIds.get(contact._id) === contact) this.#contactIds.delete(contact._id);
  }

  /** @internal The channel is closed: its id is forgotten once its effects have arrived. */
  _channelClosed(channel: Channel, forgotten: Promise<unknown>): void {
    this.#recent.delete(channel);
    if (this.#pollChannel === channel) {
      const other = this.#channels.values().next().value;
      this.#pollChannel = other !== channel ? other : undefined;
    }
    const drop = () => {
      this.#channels.delete(channel._id);
      if (this.#pollChannel === channel) this.#pollChannel = undefined;
    };
    forgotten.then(drop, drop);
  }

  // Frees contacts while more than maxContacts have an open channel: one with no call in
  // flight (its results are still coming) and no rename on its way, among the least recently
  // used three quarters (the newest quarter — conversations just started — is left alone while
  // there are older ones): one with nothing to lose first, then one with a session, an AKE
  // under way or a verified fingerprint (an encrypted or finished one leaves a tombstone), then
  // one with writes held (each reported); the least recently used first within each. None
  // free: the cap is exceeded until a call settles (see #settle).
  #evictOverCap(opened?: Channel): void {
    while (this.maxContacts > 0 && this.#recent.size > this.maxContacts) {
      const older = this.#recent.size - Math.floor(this.#recent.size / 4);
      const victim = this.#pickVictim(opened, older) ?? this.#pickVictim(opened, Infinity);
      if (!victim) return;
      this.#evict(victim, 'maxContacts');
    }
  }

  // The first `within` channels in least-recently-used order: the one with the least to lose.
  #pickVictim(opened: Channel | undefined, within: number): Channel | undefined {
    let victim: Channel | undefined;
    let victimTier = Infinity;
    let seen = 0;
    for (const channel of this.#recent.keys()) {
      if (seen++ >= within) break;
      if (channel === opened || !this.#evictable(channel)) continue;
      const tier = evictionTier(channel);
      if (tier < victimTier) {
        victim = channel;
        victimTier = tier;
        if (tier === 0) break;
      }
    }
    return victim;
  }

  #evictable(channel: Channel): boolean {
    return channel._inFlight === 0 && !channel._closed && !channel.account._nameBusy(channel.contact.name);
  }

  #evict(channel: Channel, why: string): void {
    const contact = channel.contact;
    this.#recent.delete(channel);
    contact
      ._forget({ dropUnverified: this.evictUnverifiedFingerprints, endSessions: true, reason: `${contact.name} was evicted (${why})` })
      .catch((error: unknown) => this._report(error));
    this.emit('contactEvicted', contact);
  }

  #armIdleTimer(): void {
    if (this.idleSessionTimeout <= 0 || this.#idleTimer) return;
    const self = new WeakRef(this);
    this.#idleTimer = setInterval(() => self.deref()?._expireIdle(), Math.max(10, Math.min(this.idleSessionTimeout / 4, 60_000)));
    this.#idleTimer.unref();
  }

  /** @internal Frees the contacts idle for idleSessionTimeout (oldest first). */
  _expireIdle(): void {
    if (this.#closing || !this.#handle) return;
    const before = performance.now() - this.idleSessionTimeout;
    for (const [channel, used] of [...this.#recent]) {
      if (used > before) break;
      if (this.#evictable(channel)) this.#evict(channel, 'idleSessionTimeout');
    }
  }

  /** @internal Errors no caller is waiting for: an 'error' event, or a warning if nobody listens. */
  _report(error: unknown): void {
    const wrapped = error instanceof OtrError ? error : new OtrError(ErrorCodes.CALLBACK, String((error as Error)?.message ?? error), { cause: error });
    if (this.listenerCount('error') > 0) {
      this.emit('error', wrapped);
    } else {
      process.emitWarning(wrapped.message, { code: wrapped.code, type: 'OtrWarning' });
    }
  }

  /** @internal */
  _accountFromNative(state: NativeAccount): Account {
    const key = `${state.name}\0${state.protocol}`;
    let account = this.#accounts.get(key);
    if (!account) {
      account = new Account(this, state.name, state.protocol, state.fingerprint, state.instag);
      this.#accounts.set(key, account);
      for (const contact of this.#contactsWithoutAccount.get(key)?.values() ?? []) {
        account._contactFromNative(contact.username)._update(contact);
      }

      this.#contactsWithoutAccount.delete(key);
    } else {
      account._update(state.fingerprint, state.instag);
    }
    return account;
  }

  /**
   * @internal Runs on the JS thread for everything the addon delivers, in order. Node hands
   * over every delivery waiting for the thread in one go, so under load results would be
   * applied for tens of milliseconds without a break: past DELIVERY_SLICE_MS the rest waits
   * in #backlog for the next turn of the event loop (timers and I/O run in between). A
   * delivery that asks for a callback's value is applied at once, after the backlog, since a
   * libotr call waits for the answer.
   */
  _deliver(numbers: Float64Array, count: number, values: unknown[]): unknown {
    if (asksForValue(numbers, count)) {
      this.#applyBacklog(Infinity);
      return this.#applyBatches(numbers, count, values, Infinity).answer;
    }
    if (this.#backlog.length > 0) {
      this.#backlog.push({ numbers: numbers.slice(0, count), values });
      return undefined;
    }
    const { at } = this.#applyBatches(numbers, count, values, performance.now() + DELIVERY_SLICE_MS);
    if (at < count) {
      // The handle reuses its array for the next delivery: keep a copy of what is left.
      this.#backlog.push({ numbers: numbers.slice(at, count), values });
      setImmediate(this.#continueBacklog);
    }
    return undefined;
  }

  #backlog: { numbers: Float64Array; values: unknown[] }[] = [];

  #continueBacklog = (): void => {
    if (!this.#applyBacklog(performance.now() + DELIVERY_SLICE_MS)) setImmediate(this.#continueBacklog);
  };

  // Applies waiting deliveries until `deadline`; true when none is left.
  #applyBacklog(deadline: number): boolean {
    while (this.#backlog.length > 0) {
      const first = this.#backlog[0];
      const { at } = this.#applyBatches(first.numbers, first.numbers.length, first.values, deadline);
      if (at < first.numbers.length) {
        first.numbers = first.numbers.subarray(at);
        return false;
      }
      this.#backlog.shift();
    }
    return true;
  }

  // Applies whole batches until `count`, or until `deadline` has passed; `at`: where it stopped.
  #applyBatches(numbers: Float64Array, count: number, values: unknown[], deadline: number): { at: number; answer: unknown } {
    let answer: unknown;
    let at = 0;
    while (at < count) {
      if (deadline !== Infinity && performance.now() > deadline) break;
      const job = numbers[at + BatchSlot.Job];
      const flags = numbers[at + BatchSlot.Flags];
      const resultAt = numbers[at + BatchSlot.Result];
      const queryAt = numbers[at + BatchSlot.Query];
      const effects = numbers[at + BatchSlot.Effects];
      at += BATCH_SLOTS;
      const call = job !== 0 ? this.#calls.get(job) : undefined;
      for (let k = 0; k < effects; k++, at += EFFECT_SLOTS) {
        const effect = decodeEffect(numbers, at, values);
        if (!effect) continue;
        try {
          this.#apply(effect);
        } catch (error) {
          this.#callbackFailed(call, error);
        }
      }
      if (queryAt >= 0) {
        try {
          const query = decodeQuery(values[queryAt] as unknown[]);
          answer = query && this.#answer(query);
        } catch (error) {
          this.#callbackFailed(call, error);
          answer = undefined;
        }
      }
      if (flags & BatchFlag.Done && call) this.#settle(job, call, flags, resultAt < 0 ? undefined : values[resultAt]);
    }
    return { at, answer };
  }

  #settle(job: number, call: PendingCall, flags: number, result: unknown): void {
    this.#calls.delete(job);
    if (call.channel && --call.channel._inFlight === 0 && this.maxContacts > 0 && this.#recent.size > this.maxContacts) {
      queueMicrotask(() => this.#evictOverCap());
    }
    if (this.#calls.size === 0) busy.delete(this);
    if (!(flags & BatchFlag.Ok)) {
      call.reject(fromNative(result));
    } else if (call.callbackError !== undefined) {
      const cause = call.callbackError;
      call.reject(asCallbackError(cause));
    } else {
      call.done?.();
      call.resolve(result);
    }
  }

  #callbackFailed(call: PendingCall | undefined, error: unknown): void {
    if (call) {
      if (call.callbackError === undefined) call.callbackError = error ?? new Error('callback threw a nullish value');
    } else {
      this._report(asCallbackError(error));
    }
  }

  #apply(effect: Effect): void {
    if (effect.kind === EffectKind.AccountReady) {
      this._accountFromNative(effect.account);
      return;
    }
    if (effect.kind === EffectKind.LoadSkipped) {
      this.loadReport.skipped.push({ file: this.contactsFile, line: effect.line, reason: effect.reason });
      if (!this.loadReport.copies.includes(effect.copy)) this.loadReport.copies.push(effect.copy);
      return;
    }
    if (effect.kind === EffectKind.Error) {
      this._report(fromNative({ code: effect.code, message: effect.message }));
      return;
    }
    if (effect.kind === EffectKind.ContactState) {
      const { state } = effect;
      const key = `${state.account}\0${state.protocol}`;
      const account = this.#accounts.get(key);
      const channel = effect.channel !== 0 ? this.#channels.get(effect.channel) : undefined;
      // By the contact's id (or channel), not by name: a name may have changed since.
      const contact = state.contactId !== 0 ? this.#contactIds.get(state.contactId) : channel?.contact;
      if (contact) {
        // The addon renamed it: JS follows (the rename's promise settles after this).
        if (contact.name !== state.username) contact.account._renamed(contact, state.username);
        contact._update(state);
      } else if (state.contactId !== 0 || channel) {
        // A contact object forgotten since: its state concerns nobody in JS.
      } else if (account) {
        account._contactFromNative(state.username)._update(state);
      } else {
        const waiting = this.#contactsWithoutAccount.get(key) ?? new Map<string, NativeContact>();
        waiting.set(state.username, state);
        this.#contactsWithoutAccount.set(key, waiting);
      }
      this.#store?._contactState(state);
      return;
    }
    const channel = this.#channels.get(effect.channel);
    if (!channel) return;
    if (effect.kind === EffectKind.Timer && !channel._options.onTimer) {
      this.#setPollTimer(effect.interval, channel);
      return;
    }
    channel._fire(effect);
  }

  #answer(query: Query): unknown {
    return this.#channels.get(query.channel)?._answer(query);
  }

  // Without onTimer, one timer per OTR instance drives libotr's poll. It never keeps the
  // process alive, and it holds the instance only weakly.
  #setPollTimer(seconds: number, channel: Channel | undefined): void {
    if (this.#pollTimer) clearInterval(this.#pollTimer);
    this.#pollTimer = undefined;
    this.#pollChannel = seconds > 0 ? channel : undefined;
    if (seconds <= 0 || !channel) return;
    const self = new WeakRef(this);
    this.#pollTimer = setInterval(() => self.deref()?._poll(), seconds * 1000);
    this.#pollTimer.unref();
  }

  /** @internal */
  _poll(): void {
    const channel = this.#pollChannel;
    if (!channel || this.#closing || !this.#handle) return;
    this._channelOp(channel, ChannelOp.Ping, []).catch((error: unknown) => this._report(error));
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

// What freeing the channel's contact would lose (lower is less): 0 nothing, 1 a session, one
// on its way (an AKE started) or trust, 2 writes waiting for an encrypted session.
function evictionTier(channel: Channel): number {
  const state = channel.contact._state;
  const flags = state?.flags ?? 0;
  if (flags & ContactFlag.WritesHeld) return 2;
  if (flags & (ContactFlag.WasPrivate | ContactFlag.Refreshing | ContactFlag.AkeUnderWay)) return 1;
  if (state && state.status !== SessionStatus.Unused && state.status !== SessionStatus.NotPrivate) return 1; // encrypted or finished
  if (state?.sessions.some((s) => s.status !== SessionStatus.Unused && s.status !== SessionStatus.NotPrivate)) return 1;
  if (channel.contact.fingerprints().some((fp) => fp.isVerified)) return 1;
  return 0;
}

function asCallbackError(cause: unknown): OtrError {
  if (cause instanceof OtrError && cause.code === ErrorCodes.CALLBACK) return cause;
  return new OtrError(ErrorCodes.CALLBACK, `a callback threw: ${(cause as Error)?.message ?? String(cause)}`, { cause });
}
