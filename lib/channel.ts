// A channel: the OTR conversation with one contact, its options and callbacks. It reaches its
// contact, its account and the OTR instance through ChannelContact, ChannelAccount and
// ChannelContext, implemented by the Contact, the Account and the instance's internals.
import { type Instag, MessageEvent, Policy, SmpEvent, type ErrorCode } from './constants';
import { ErrorCodes, OtrError } from './errors';
import type { NativeHandle } from './native';
import {
  CallbackFlag,
  ChannelOp,
  ContactFlag,
  EffectKind,
  QueryKind,
  type ChannelOpArgs,
  type ChannelOpResult,
  type Effect,
  type NativeContact,
  type Query,
} from './native-contract';
import { statusWord, type Status } from './status';
import { describe, invalid, rejectUnknownOptions, requireBoolean, requireInteger, requireText } from './validate';

/** What onRead's third argument says about a message. */
export interface ReadInfo {
  /** libotr decrypted it (false: it arrived in plaintext, whatever the session's state). */
  encrypted: boolean;
  /** The sender's instance tag (0 when the message carried none). */
  instag: number;
  /**
   * The fingerprint (human form) of the session that decrypted it; undefined for plaintext.
   * It may differ from `channel.contact.activeFingerprint`, which is the session writes go to.
   */
  fingerprint?: string;
  /** That fingerprint is verified (false for plaintext): who sent this message is who you verified. */
  verified: boolean;
}

/** What onUnverifiedInstance says about the new session. */
export interface UnverifiedInstanceInfo {
  /** Its instance tag (the contact's client, or whoever claims to be it). */
  instag: number;
  /** Its fingerprint, human form: not verified, unlike one the contact already has. */
  fingerprint: string;
}

/** The outcome of init() and its retries, given to onQueryResult once. */
export interface QueryResult {
  /** The channel went encrypted; false: every query went unanswered. */
  secure: boolean;
  /** How many queries were sent. */
  queries: number;
}

/**
 * How an SMP exchange ended, as the `outcome` of {@link Channel.smpVerify} and
 * {@link Channel.smpRespond} reports it:
 * - `'verified'`: both sides gave the same secret (SmpEvent.SUCCESS); the contact's
 *   fingerprint is now trusted (`'smp'`) on the side that asked (docs/INTERPRETATION.md, SMP);
 * - `'failed'`: the secrets differed (SmpEvent.FAILURE); libotr removes the trust;
 * - `'aborted'`: the contact aborted it, or this side did (`smpAbort()`, or a new exchange
 *   started before it ended);
 * - `'cheated'`: the contact deviated from the protocol (SmpEvent.CHEATED);
 * - `'error'`: an SMP message arrived out of order, for instance the contact started its own
 *   exchange meanwhile (SmpEvent.ERROR); the exchange is aborted;
 * - `'ended'`: the encrypted session ended (`finish()` on either side, `refresh()` on this
 *   one), or the channel or the OTR instance was closed, before an outcome.
 */
export type SmpOutcome = 'verified' | 'failed' | 'aborted' | 'cheated' | 'error' | 'ended';

/** What {@link Channel.smpVerify} and {@link Channel.smpRespond} resolve with. */
export interface SmpExchange {
  /**
   * Resolves (never rejects) once the exchange ends: when the contact's last SMP message is
   * read, or the exchange is aborted or its session ends (see {@link SmpOutcome}). A contact
   * that never answers leaves it pending until `smpAbort()`, `finish()` or `close()`. The
   * same outcome also arrives as onSmpEvent.
   */
  readonly outcome: Promise<SmpOutcome>;
}

const SMP_OUTCOMES: Partial<Record<SmpEvent, SmpOutcome>> = {
  [SmpEvent.SUCCESS]: 'verified',
  [SmpEvent.FAILURE]: 'failed',
  [SmpEvent.ABORT]: 'aborted',
  [SmpEvent.CHEATED]: 'cheated',
  [SmpEvent.ERROR]: 'error',
};

/** Why the library started an AKE by itself, given to onSessionRestart. */
export interface SessionRestartInfo {
  /**
   * `'lost-session'`: the contact sent an encrypted message to a session this side does not
   * have (this process restarted, another node took the contact over, the contact was freed).
   * That message could not be read (onEvent had RCVDMSG_NOT_IN_PRIVATE); a query went out, so a
   * new AKE replaces the session the contact's client still shows.
   */
  reason: 'lost-session';
  /** The instance tag the contact's message came from (0 for OTR version 2, which has none). */
  instag: number;
}

/** How a channel behaves and the callbacks it calls; see {@link Contact.channel}. */
export interface ChannelOptions {
  /** Which versions, and when to start or require encryption (default `Policy.OPPORTUNISTIC`). */
  policy?: Policy | number;
  /** Fragment wire messages longer than this (default by protocol as in Protocol::OTR: prpl-irc 417, …; 0: never; 1–37 is an error). */
  maxMessageSize?: number;
  /** No wire text may contain a line break (IRC and other line-based transports). Default: prpl-irc. */
  lineBased?: boolean;
  /** The human-readable part of OTR queries (after the version tag); default: the account's, the OTR's, or a built-in text. */
  queryText?: string;
  /** Queries init() sends again while the channel is not encrypted (default 2, so 3 in all). */
  queryRetries?: number;
  /** Milliseconds to wait for an encrypted session before the next query (default 10,000). */
  queryRetryInterval?: number;
  /**
   * A contact that writes encrypted messages into a session this side does not have (after a
   * restart, a takeover, an eviction) is sent a query, so a new AKE heals the conversation
   * without the application calling init(); reported through onSessionRestart. Bounded per
   * contact (docs/INTERPRETATION.md, "Sessions the contact still believes in"). Default true.
   */
  restartLostSessions?: boolean;
  /** Send this wire text to the contact (required). */
  onWrite: (channel: Channel, message: string) => void;
  /** A message for the user, decrypted or plaintext as `info` says (required). */
  onRead: (channel: Channel, message: string, info: ReadInfo) => void;
  /** How `init()` and its retries ended, once. */
  onQueryResult?: (channel: Channel, result: QueryResult) => void;
  /**
   * The library sent a query by itself (see restartLostSessions): the AKE that follows ends in
   * onGoneSecure, as after init().
   */
  onSessionRestart?: (channel: Channel, info: SessionRestartInfo) => void;
  /** The channel became encrypted. */
  onGoneSecure?: (channel: Channel) => void;
  /** The encrypted session ended. */
  onGoneInsecure?: (channel: Channel) => void;
  /** A new AKE completed on an already encrypted channel (a refresh). */
  onStillSecure?: (channel: Channel) => void;
  /** The contact's fingerprint in this AKE is not trusted; `seenBefore` says whether it is known. */
  onUnverifiedFingerprint?: (channel: Channel, fingerprintHash: string, seenBefore: boolean) => void;
  /**
   * A session whose fingerprint is not verified went secure on a contact that has a verified
   * fingerprint: an impostor, or the contact on a new device. Its messages reach onRead with
   * `verified: false`; writes keep going to the verified session (see ReadInfo).
   */
  onUnverifiedInstance?: (channel: Channel, info: UnverifiedInstanceInfo) => void;
  /** The contact derived the extra symmetric key: the key (32 bytes), its use number and use data. */
  onSymkey?: (channel: Channel, symkey: Buffer, use: number, useFor: string) => void;
  /** Call `ping()` every `interval` seconds (0: stop); without it, the library runs the timer itself. */
  onTimer?: (channel: Channel, interval: number) => void;
  /** The contact started SMP: return the answer now, or call `smpRespond()` later. */
  onSmp?: (channel: Channel, question?: string) => string | void;
  /** Return the text of the OTR error message sent to the contact for `code`. */
  onError?: (channel: Channel, code: ErrorCode) => string | void;
  /** Something happened to a message (see {@link MessageEvent}), with its text where there is one. */
  onEvent?: (channel: Channel, code: MessageEvent, message?: string) => void;
  /** SMP progress (see {@link SmpEvent}), with the percentage done. */
  onSmpEvent?: (channel: Channel, code: SmpEvent, progress: number) => void;
  /** Change a message before it is encrypted; return the text to encrypt. */
  onBeforeEncrypt?: (channel: Channel, message: string) => string;
  /** Change a message after it is decrypted; return the text for `onRead`. */
  onAfterDecrypt?: (channel: Channel, message: string) => string;
  /** Whether the contact is online (1/true, 0/false, -1 unknown): libotr asks before sending a disconnect message. */
  onIsContactLoggedIn?: (channel: Channel) => 1 | 0 | -1 | boolean;
}

const CALLBACKS = [
  'onWrite',
  'onRead',
  'onGoneSecure',
  'onGoneInsecure',
  'onStillSecure',
  'onUnverifiedFingerprint',
  'onUnverifiedInstance',
  'onSymkey',
  'onTimer',
  'onSmp',
  'onError',
  'onEvent',
  'onSmpEvent',
  'onBeforeEncrypt',
  'onAfterDecrypt',
  'onIsContactLoggedIn',
  'onQueryResult',
  'onSessionRestart',
] as const satisfies (keyof ChannelOptions)[];

// Every option name, checked against the interface: a misspelt one (`onSmpEvnt`) is refused, not ignored.
const CHANNEL_OPTION_NAMES = Object.keys({
  policy: true,
  maxMessageSize: true,
  lineBased: true,
  queryText: true,
  queryRetries: true,
  queryRetryInterval: true,
  onWrite: true,
  onRead: true,
  onQueryResult: true,
  onGoneSecure: true,
  onGoneInsecure: true,
  onStillSecure: true,
  onUnverifiedFingerprint: true,
  onUnverifiedInstance: true,
  onSymkey: true,
  onTimer: true,
  onSmp: true,
  onError: true,
  onEvent: true,
  onSmpEvent: true,
  onBeforeEncrypt: true,
  onAfterDecrypt: true,
  onIsContactLoggedIn: true,
  restartLostSessions: true,
  onSessionRestart: true,
} satisfies Record<keyof ChannelOptions, true>);

// Transports where a line break ends the message (the rest would be a command, or chat).
const LINE_BASED_PROTOCOLS = new Set(['prpl-irc']);

// For line-based transports, where libotr's HTML text would arrive as several lines of chat.
function plainQueryText(account: string): string {
  return `${account} has requested an Off-the-Record private conversation, but your client does not support OTR (https://otr.cypherpunks.ca/).`;
}

// The Perl module's defaults: the largest message each network carries.
const MAX_MESSAGE_SIZE_BY_PROTOCOL: Record<string, number> = {
  'prpl-msn': 1409,
  'prpl-icq': 2346,
  'prpl-aim': 2343,
  'prpl-yahoo': 799,
  'prpl-gg': 1999,
  'prpl-irc': 417,
  'prpl-oscar': 2343,
};

// How long an AKE of the contact's counts as under way after its last message: libotr's own
// bound on an AKE waiting for its next message (MAX_AKE_WAIT_TIME).
const AKE_PATIENCE_MS = 60_000;

// An OTR v3 fragment header ("?OTR|xxxxxxxx|xxxxxxxx,xxxxx,xxxxx,") plus its closing comma.
const FRAGMENT_OVERHEAD = 37;

const utf8 = new TextDecoder('utf-8');

/** @internal What a channel asks of the OTR instance it belongs to (the instance's internals implement it). */
export interface ChannelContext {
  /** Whether otr.close() was called. */
  readonly closed: boolean;
  /** otr.close()'s promise, once it was called. */
  readonly closing: Promise<void> | undefined;
  /** The instance's query text (OTR's queryText). */
  readonly queryText: string | undefined;
  /** The largest message read() hands to libotr (OTROptions.maxIncomingSize). */
  readonly maxIncomingSize: number;
  /** An error no caller waits for ('error' on the instance). */
  report(error: unknown): void;
  /** Registers a new channel, and queues `open` (its openChannel job); returns the channel's id. */
  registerChannel(channel: Channel, open: (job: number, handle: NativeHandle, id: number) => void): number;
  /** One call of the channel; `done` runs once it succeeded, before anything delivered after it. */
  channelOp<O extends ChannelOp>(channel: Channel, op: O, args: ChannelOpArgs[O], done?: () => void): Promise<ChannelOpResult[O]>;
  /** The channel is closed: its id is forgotten once `forgotten` settles. */
  channelClosed(channel: Channel, forgotten: Promise<unknown>): void;
}

/** @internal What a channel asks of its contact (the Contact implements it). */
export interface ChannelContact {
  readonly _id: number;
  readonly name: string;
  readonly _state: NativeContact | undefined;
  _humanFingerprint(hex: string): string;
  _forgetNative(dropUnverified: boolean, endSessions: boolean): Promise<void>;
  _channelClosed(channel: Channel): void;
}

/** @internal What a channel asks of its account (the Account implements it). */
export interface ChannelAccount {
  readonly name: string;
  readonly protocol: string;
  readonly queryText: string | undefined;
}

/** An OTR conversation with one contact: every message in and out goes through it. */
export class Channel {
  /** The policy it was opened with. */
  readonly policy: number;
  /** The fragment size it uses (0: no fragmentation). */
  readonly maxMessageSize: number;
  /** Whether wire text is kept free of line breaks. */
  readonly lineBased: boolean;
  /** How many times `init()` sends the query again. */
  readonly queryRetries: number;
  /** Milliseconds between queries. */
  readonly queryRetryInterval: number;
  /** Whether a session the contact writes into and this side lost is restarted (see ChannelOptions). */
  readonly restartLostSessions: boolean;
  #queryText: string | undefined;
  #queryTextSent: string | undefined;
  #queriesSent = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  // Settles the outcome of the SMP exchange under way (see SmpExchange).
  #smp: ((outcome: SmpOutcome) => void) | undefined;
  #closing: Promise<void> | undefined;
  // Something arrived from the contact since the retry timer was armed, and how many
  // intervals were granted for that: an AKE under way is given time, not a new query.
  #heard = false;
  #patience = 0;
  // The contact's AKE messages since the last query: whether one came since the timer was
  // armed, and the milliseconds of deadlines passed without one since the last.
  #akeSinceQuery = false;
  #akeHeard = false;
  #akeQuietMs = 0;
  // The last read(): a deadline that finds calls in flight is decided once it has settled.
  #lastRead: Promise<unknown> | undefined;
  #deadlineWaits = false;
  readonly #contact: ChannelContact;
  readonly #account: ChannelAccount;
  readonly #context: ChannelContext;
  /** @internal */
  readonly _options: ChannelOptions;
  /** @internal */
  readonly _id: number;

  /** @internal */
  constructor(contact: ChannelContact, account: ChannelAccount, context: ChannelContext, options: ChannelOptions) {
    const settings = channelSettings(options, account.protocol, 'contact.channel()');
    this.policy = settings.policy;
    const size = settings.maxMessageSize;
    this.maxMessageSize = size;
    this.lineBased = settings.lineBased;
    this.queryRetries = settings.queryRetries;
    this.queryRetryInterval = settings.queryRetryInterval;
    this.#queryText = settings.queryText;
    this.restartLostSessions = settings.restartLostSessions;
    // Published as `account` and `contact`, which account.ts and contact.ts declare (an Account,
    // a Contact): here they are only what a channel asks of them.
    Object.assign(this, { account, contact });
    this.#contact = contact;
    this.#account = account;
    this.#context = context;
    this._options = { ...options };
    const flags =
      (options.onBeforeEncrypt ? CallbackFlag.BeforeEncrypt : 0) |
      (options.onAfterDecrypt ? CallbackFlag.AfterDecrypt : 0) |
      (options.onIsContactLoggedIn ? CallbackFlag.IsLoggedIn : 0) |
      (options.onError ? CallbackFlag.ErrorText : 0) |
      (options.onSmp ? CallbackFlag.Smp : 0);
    const queryText = this.#resolvedQueryText();
    this.#queryTextSent = queryText;
    this._id = context.registerChannel(this, (job, handle, id) =>
      handle.openChannel(
        job,
        id,
        contact._id,
        account.name,
        account.protocol,
        contact.name,
        this.policy,
        size,
        flags,
        this.lineBased,
        queryText,
        this.restartLostSessions,
      ),
    );
  }

  /** The human-readable part of this channel's OTR queries (undefined: the account's or OTR's). */
  get queryText(): string | undefined {
    return this.#queryText;
  }

  /** Sets it (undefined: the account's or OTR's). */
  set queryText(text: string | undefined) {
    this.#queryText = text === undefined ? undefined : requireText('queryText', text, { allowEmpty: true });
  }

  #resolvedQueryText(): string | undefined {
    const text = this.#queryText ?? this.#account.queryText ?? this.#context.queryText;
    if (text !== undefined) return text;
    return this.lineBased ? plainQueryText(this.#account.name) : undefined;
  }

  // The addon keeps the text it puts in queries; it learns of a change, in call order,
  // before the next call that may send one.
  #syncQueryText(): void {
    const text = this.#resolvedQueryText();
    if (text === this.#queryTextSent) return;
    this.#queryTextSent = text;
    this.#op(ChannelOp.SetQueryText, [text]).catch((error: unknown) => this.#context.report(error));
  }

  /** @internal Calls queued and not yet settled. */
  _inFlight = 0;
  /** @internal With a shared store: what calls wait for before they may act (see Instance.channelOp). */
  _admission: Promise<void> | undefined;
  /** @internal How many calls wait for `_admission`. */
  _admissionWaiting = 0;
  /** @internal Why the channel is closed (the message of ERR_OTR_CLOSED), or undefined. */
  _closed: string | undefined;

  /**
   * Closes the channel and frees what libotr keeps for the contact (its sessions, their keys):
   * sessions end without a word to the contact (call finish() first to tell them), and writes
   * still waiting for an AKE are reported as CONNECTION_ENDED. The contact and its
   * fingerprints stay; contact.channel() opens a new channel. Later calls on this one reject
   * with ERR_OTR_CLOSED; an SMP exchange under way ends (`'ended'`).
   *
   * Resolves once libotr's state for the contact is freed (and, with a shared store, its
   * changes are stored). Cleanup is idempotent: a second call returns the first one's promise
   * (or resolves at once for a channel the library closed: forgotten, evicted); after
   * `otr.close()` it returns otr.close()'s promise, since closing the instance frees every
   * channel.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this._closed) return Promise.resolve();
    if (this.#context.closing) return this.#context.closing;
    this.#closing = this._close(`the channel to ${this.#contact.name} is closed`, false, false);
    return this.#closing;
  }

  /** @internal */
  _close(reason: string, dropUnverified: boolean, endSessions: boolean): Promise<void> {
    this._closed = reason;
    this._stopRetries();
    this._endSmp('ended');
    const forgotten = this.#contact._forgetNative(dropUnverified, endSessions);
    this.#contact._channelClosed(this);
    this.#context.channelClosed(this, forgotten);
    return forgotten;
  }

  /** @internal The addon has no record of this channel (its open was refused, or a rename took its name). */
  _closedByAddon(reason: string): void {
    if (this._closed) return;
    this._closed = reason;
    this._stopRetries();
    this._endSmp('ended');
    this.#contact._channelClosed(this);
    this.#context.channelClosed(this, Promise.resolve());
  }

  /** Status of the selected session. */
  get status(): Status {
    return statusWord(this.#contact._state?.status ?? 0);
  }

  /**
   * Sends an OTR query. While the channel does not go encrypted, the query is sent again
   * after queryRetryInterval ms of silence from the contact, queryRetries times (a contact's
   * client may be generating its key, or answer with a stale AKE message); an interval in
   * which the contact sent something is waited again instead, as often as there are retries
   * and once more, so an AKE under way is not restarted. After the last query the outcome
   * waits while the contact's AKE is under way (its AKE messages came since that query, the
   * last less than 60 s ago). onQueryResult reports the outcome once.
   *
   * Resolves once the first query has been handed to onWrite — not when the channel is
   * encrypted: that is onGoneSecure, and onQueryResult (`{ secure, queries }`) says how the
   * query and its retries ended. Rejects with ERR_OTR_CLOSED once the channel or the OTR is
   * closed, ERR_OTR_CALLBACK when onWrite threw.
   */
  async init(): Promise<void> {
    this.#syncQueryText();
    this._stopRetries();
    this.#queriesSent = 1;
    await this.#op(ChannelOp.Init, []);
    if (this.#queriesSent === 1 && !this.#isEncrypted()) this.#armRetry();
    else if (this.#queriesSent === 1) this.#reportQuery(true);
  }

  #isEncrypted(): boolean {
    const status = this.status;
    return status === 'Unverified' || status === 'Private';
  }

  #armRetry(): void {
    // Holds the channel weakly, like the poll timer: a pending retry never keeps an OTR alive.
    const self = new WeakRef(this);
    this.#heard = false;
    this.#akeHeard = false;
    this.#retryTimer = setTimeout(() => self.deref()?._retry(), this.queryRetryInterval);
    this.#retryTimer.unref();
  }

  /** @internal */
  _retry(): void {
    try {
      this.#retryNow();
    } catch (error) {
      this.#context.report(error);
    }
  }

  #retryNow(): void {
    this.#retryTimer = undefined;
    if (this.#queriesSent === 0 || this.#context.closed) return;
    // What the contact sent before the deadline counts: its reads finish first.
    if (this._inFlight > 0 && this.#lastRead && !this.#deadlineWaits) {
      this.#deadlineWaits = true;
      const decide = (): void => {
        if (!this.#deadlineWaits) return; // stopped, or started again, meanwhile
        this.#retryNow();
        this.#deadlineWaits = false;
      };
      this.#lastRead.then(decide, decide).catch((error: unknown) => this.#context.report(error));
      return;
    }
    if (this.#isEncrypted()) return this.#reportQuery(true);
    this.#akeQuietMs = this.#akeHeard ? 0 : this.#akeQuietMs + this.queryRetryInterval;
    if (this.#heard && this.#patience <= this.queryRetries) {
      this.#patience++;
      return this.#armRetry();
    }
    if (this.#queriesSent > this.queryRetries) {
      if (this.#akeUnderWay()) return this.#armRetry();
      return this.#reportQuery(false);
    }
    this.#queriesSent++;
    this.#akeSinceQuery = false;
    this.#akeQuietMs = 0;
    this.#syncQueryText();
    this.#op(ChannelOp.Init, []).then(
      () => {
        if (this.#queriesSent > 0) this.#armRetry();
      },
      (error: unknown) => {
        this._stopRetries();
        this.#context.report(error);
      },
    );
  }

  // The contact's AKE answering our last query is still going: its messages came since that
  // query, the last one less than AKE_PATIENCE_MS of deadlines ago, and our side of the AKE
  // has not ended (completed, or given up by libotr).
  #akeUnderWay(): boolean {
    const flags = this.#contact._state?.flags ?? 0;
    return this.#akeSinceQuery && this.#akeQuietMs < AKE_PATIENCE_MS && (flags & ContactFlag.AkeUnderWay) !== 0;
  }

  #reportQuery(secure: boolean): void {
    const queries = this.#queriesSent;
    this._stopRetries();
    this._options.onQueryResult?.(this, { secure, queries });
  }

  /** @internal Drops a pending retry without reporting (finish(), close()). */
  _stopRetries(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#queriesSent = 0;
    this.#patience = 0;
    this.#akeSinceQuery = false;
    this.#akeQuietMs = 0;
    this.#deadlineWaits = false;
  }

  /**
   * Re-runs the AKE for fresh keys; writes meanwhile wait and are never sent in clear.
   * Resolves once the query has been handed to onWrite; onGoneSecure follows when the new AKE
   * completes. An SMP exchange under way ends (`'ended'`).
   */
  async refresh(): Promise<void> {
    this.#syncQueryText();
    await this.#op(ChannelOp.Refresh, []);
  }

  /**
   * Ends every session with the contact: each encrypted one is sent the OTR disconnect
   * message (through onWrite, unless onIsContactLoggedIn says the contact is offline) and the
   * channel is plaintext again. Resolves once that is done; an SMP exchange under way ends
   * (`'ended'`), and init()'s retries stop.
   */
  async finish(): Promise<void> {
    this._stopRetries();
    await this.#op(ChannelOp.Finish, [], () => this._endSmp('ended'));
  }

  /**
   * The extra symmetric key. Resolves with it (a 32-byte Buffer) once the message telling the
   * contact has been handed to onWrite; the contact's onSymkey receives the same bytes with
   * `use` and `useFor`. Rejects with ERR_OTR_NOT_PRIVATE when the channel is not encrypted,
   * ERR_OTR_SYMKEY when the session is OTR version 2.
   */
  async createSymkey(use: number, useFor: string | Uint8Array): Promise<Buffer> {
    requireInteger('use', use, 0, 0xffffffff);
    let data: Buffer;
    if (typeof useFor === 'string') data = Buffer.from(useFor, 'utf8');
    else if (useFor instanceof Uint8Array) data = Buffer.from(useFor);
    else throw invalid(`useFor must be a string or a Uint8Array, got ${describe(useFor)}`);
    return this.#op(ChannelOp.Symkey, [use, data]);
  }

  /** libotr's periodic poll (clears stale AKE state); see onTimer. Resolves once it ran. */
  async ping(): Promise<void> {
    await this.#op(ChannelOp.Ping, []);
  }

  /**
   * Starts SMP (the socialist millionaires' protocol): the contact must answer with the same
   * `answer` (UTF-8), optionally to `question`. Resolves once the first SMP message has been
   * handed to onWrite — not when the contact has answered: the result is the
   * {@link SmpExchange}'s `outcome` (`'verified'` when the secrets matched), also reported to
   * onSmpEvent. Rejects with ERR_OTR_NOT_PRIVATE when the channel is not encrypted,
   * ERR_OTR_CLOSED once closed, ERR_OTR_INVALID_ARGUMENT for an empty answer. Starting again
   * while an exchange is under way replaces it (the earlier one's outcome is `'aborted'`).
   */
  async smpVerify(answer: string, question?: string): Promise<SmpExchange> {
    requireSecret(answer);
    const asked = question === undefined ? undefined : requireText('question', question, { allowEmpty: true });
    return this.#startSmp((begin) => this.#op(ChannelOp.SmpVerify, [answer, asked], begin));
  }

  /**
   * Answers the contact's SMP request (announced by onSmp and SmpEvent.ASK_FOR_SECRET or
   * ASK_FOR_ANSWER). Resolves once the reply has been handed to onWrite, with the exchange's
   * `outcome` to come (see {@link SmpExchange}); rejects as smpVerify() does.
   */
  async smpRespond(answer: string): Promise<SmpExchange> {
    requireSecret(answer);
    return this.#startSmp((begin) => this.#op(ChannelOp.SmpRespond, [answer], begin));
  }

  /**
   * Aborts the SMP exchange in progress, telling the contact. Resolves once the abort message
   * has been handed to onWrite; an exchange started here then has the outcome `'aborted'`.
   */
  async smpAbort(): Promise<void> {
    await this.#op(ChannelOp.SmpAbort, [], () => this._endSmp('aborted'));
  }

  // The exchange's outcome starts to count when the call's own work is done, so SMP events of
  // calls queued before it never settle it.
  async #startSmp(send: (begin: () => void) => Promise<unknown>): Promise<SmpExchange> {
    let settle!: (outcome: SmpOutcome) => void;
    const outcome = new Promise<SmpOutcome>((resolve) => (settle = resolve));
    await send(() => {
      this._endSmp('aborted');
      this.#smp = settle;
    });
    return { outcome };
  }

  /** @internal Settles the outcome of the exchange under way, if any. */
  _endSmp(outcome: SmpOutcome): void {
    const settle = this.#smp;
    this.#smp = undefined;
    settle?.(outcome);
  }

  /**
   * Sends a message: the wire text (encrypted, fragmented) goes to onWrite.
   *
   * Resolves once the message is handed over: given to onWrite (every fragment), or queued
   * until the channel is encrypted (a policy that requires encryption, a refresh() under way:
   * then it goes out, in order, after onGoneSecure). It never waits for the contact. A write
   * that cannot go out (the contact finished the session, or it was still queued at finish(),
   * close() or eviction) resolves too and is reported as onEvent CONNECTION_ENDED with its
   * text. Rejects for the caller's mistakes: a message that is not a non-empty string
   * without NUL, ERR_OTR_CLOSED, ERR_OTR_CALLBACK when a callback threw,
   * ERR_OTR_ENCRYPTION when libotr could not encrypt it.
   */
  write(message: string): Promise<void> {
    // Not async: a bridge calls this for every message; one promise is enough.
    try {
      requireText('message', message);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#syncQueryText();
    return this.#op(ChannelOp.Write, [message]);
  }

  /**
   * Hands in anything received from the contact; messages for the user go to onRead.
   * Resolves once it has been handled: every callback it caused (onRead, onWrite of replies,
   * onGoneSecure, onSmpEvent, …) has run. Whatever the contact sent, the promise resolves: a message that cannot be handled
   * (larger than the OTR's maxIncomingSize, holding NUL) becomes an onEvent. It rejects
   * only for the caller's mistakes: input that is not a string, a closed channel.
   */
  read(input: string): Promise<void> {
    if (typeof input !== 'string') return Promise.reject(invalid(`input must be a string, got ${describe(input)}`));
    const dropped = refusedIncoming(input, this.#context.maxIncomingSize);
    if (dropped) return this.#op(ChannelOp.Dropped, dropped);
    this.#syncQueryText();
    this.#heard = true;
    const read = this.#op(ChannelOp.Read, [input]);
    this.#lastRead = read;
    return read;
  }

  /** Instance tags the contact has used with us. */
  sessions(): number[] {
    return (this.#contact._state?.sessions ?? []).map((s) => s.instag).filter((tag) => tag !== 0);
  }

  /** The contact's instance tag in use now (0 when there is none). */
  get currentSession(): number {
    return this.#contact._state?.current ?? 0;
  }

  /**
   * Selects a session by instance tag or Instag selector. Resolves with true once writes go to
   * it; false for an instance tag not among sessions() (the selection is unchanged). An
   * Instag selector always resolves with true.
   */
  async selectSession(id: number | Instag): Promise<boolean> {
    requireInteger('id', id, 0, 0xffffffff);
    return this.#op(ChannelOp.SelectSession, [id]);
  }

  #op<O extends ChannelOp>(op: O, args: ChannelOpArgs[O], done?: () => void): Promise<ChannelOpResult[O]> {
    return this.#context.channelOp(this, op, args, done);
  }

  /** @internal Calls the user's callback for one effect. */
  _fire(effect: Effect): void {
    const o = this._options;
    switch (effect.kind) {
      case EffectKind.Write:
        o.onWrite(this, effect.text);
        return;
      case EffectKind.Read: {
        const { text, encrypted, instag, verified } = effect;
        const fingerprint = effect.fingerprint === undefined ? undefined : this.#contact._humanFingerprint(effect.fingerprint);
        o.onRead(this, text, { encrypted, instag, fingerprint, verified });
        return;
      }
      case EffectKind.UnverifiedInstance:
        o.onUnverifiedInstance?.(this, { instag: effect.instag, fingerprint: effect.human });
        return;
      case EffectKind.SessionRestart:
        o.onSessionRestart?.(this, { reason: 'lost-session', instag: effect.instag });
        return;
      case EffectKind.AkeReceived:
        this.#akeSinceQuery = true;
        this.#akeHeard = true;
        return;
      case EffectKind.GoneSecure:
        try {
          o.onGoneSecure?.(this);
        } finally {
          // A query retry is waiting: this is its outcome.
          if (this.#retryTimer) this.#reportQuery(true);
        }
        return;
      case EffectKind.GoneInsecure:
        this._endSmp('ended');
        o.onGoneInsecure?.(this);
        return;
      case EffectKind.StillSecure:
        o.onStillSecure?.(this);
        return;
      case EffectKind.NewFingerprint:
        o.onUnverifiedFingerprint?.(this, effect.human, effect.seenBefore);
        return;
      case EffectKind.Symkey:
        o.onSymkey?.(this, effect.key, effect.use, utf8.decode(effect.useData));
        return;
      case EffectKind.Timer:
        o.onTimer?.(this, effect.interval);
        return;
      case EffectKind.SmpEvent: {
        const outcome = SMP_OUTCOMES[effect.event as SmpEvent];
        if (outcome) this._endSmp(outcome);
        o.onSmpEvent?.(this, effect.event, effect.progress);
        return;
      }
      case EffectKind.MsgEvent:
        o.onEvent?.(this, effect.event, effect.text);
        return;
      default:
        return;
    }
  }

  /** @internal The value of the user's callback libotr waits for, or undefined for its default. */
  _answer(query: Query): unknown {
    const o = this._options;
    switch (query.kind) {
      case QueryKind.BeforeEncrypt: {
        const converted = synchronous('onBeforeEncrypt', o.onBeforeEncrypt?.(this, query.text));
        return typeof converted === 'string' ? converted : undefined;
      }
      case QueryKind.AfterDecrypt: {
        const converted = synchronous('onAfterDecrypt', o.onAfterDecrypt?.(this, query.text));
        return typeof converted === 'string' ? converted : undefined;
      }
      case QueryKind.IsLoggedIn: {
        const answer = synchronous('onIsContactLoggedIn', o.onIsContactLoggedIn?.(this));
        if (answer === true) return 1;
        if (answer === false) return 0;
        if (answer === 1 || answer === 0 || answer === -1) return answer;
        return 1;
      }
      case QueryKind.SmpSecret: {
        // A returned string answers the request now; otherwise the app calls smpRespond later.
        const answer = synchronous('onSmp', o.onSmp?.(this, query.question));
        return typeof answer === 'string' && answer.length > 0 ? answer : undefined;
      }
      case QueryKind.ErrorText: {
        const message = synchronous('onError', o.onError?.(this, query.code));
        return typeof message === 'string' && !message.includes('\0') ? message : undefined;
      }
      default:
        return undefined;
    }
  }
}

/**
 * @internal Checks channel options (for `protocol`'s defaults) as the channel will use them:
 * unknown names, callbacks that are not functions, values out of range. `what` names the call.
 */
export function channelSettings(options: ChannelOptions, protocol: string, what: string) {
  if (options === null || typeof options !== 'object') throw invalid(`${what} options must be an object, got ${describe(options)}`);
  rejectUnknownOptions(what, options, CHANNEL_OPTION_NAMES);
  for (const name of CALLBACKS) {
    const callback = options[name];
    if (callback !== undefined && typeof callback !== 'function') throw invalid(`${name} must be a function, got ${describe(callback)}`);
  }
  if (!options.onWrite) throw new OtrError(ErrorCodes.MISSING_CALLBACK, 'onWrite is required: it delivers wire messages to the contact');
  if (!options.onRead) throw new OtrError(ErrorCodes.MISSING_CALLBACK, 'onRead is required: it receives messages for the user');
  const maxMessageSize = requireInteger('maxMessageSize', options.maxMessageSize ?? MAX_MESSAGE_SIZE_BY_PROTOCOL[protocol] ?? 0, 0, 0x7fffffff);
  if (maxMessageSize !== 0 && maxMessageSize <= FRAGMENT_OVERHEAD) {
    throw invalid(`maxMessageSize must be 0 (no fragmentation) or more than ${FRAGMENT_OVERHEAD}, the OTR fragment header; got ${maxMessageSize}`);
  }
  return {
    policy: requireInteger('policy', options.policy ?? Policy.OPPORTUNISTIC, 0, 0x7f),
    maxMessageSize,
    lineBased: options.lineBased === undefined ? LINE_BASED_PROTOCOLS.has(protocol) : requireBoolean('lineBased', options.lineBased),
    queryRetries: requireInteger('queryRetries', options.queryRetries ?? 2, 0, 100),
    queryRetryInterval: requireInteger('queryRetryInterval', options.queryRetryInterval ?? 10_000, 1, 0x7fffffff),
    queryText: options.queryText === undefined ? undefined : requireText('queryText', options.queryText, { allowEmpty: true }),
    restartLostSessions: requireBoolean('restartLostSessions', options.restartLostSessions ?? true),
  };
}

// Why a received message never reaches libotr, as [the event, its text]; undefined if it may.
// Checked before the text is copied into native memory: a huge string costs a length check.
function refusedIncoming(input: string, maxBytes: number): [MessageEvent, string] | undefined {
  // A UTF-16 unit is at least one UTF-8 byte and at most three.
  const bytes = input.length > maxBytes ? input.length : input.length * 3 > maxBytes ? Buffer.byteLength(input, 'utf8') : 0;
  if (bytes > maxBytes) {
    const size = input.length > maxBytes ? `at least ${input.length}` : `${bytes}`;
    return [MessageEvent.RCVDMSG_GENERAL_ERR, `dropped a message of ${size} bytes: larger than maxIncomingSize (${maxBytes})`];
  }
  if (input.includes('\0')) return [MessageEvent.RCVDMSG_MALFORMED, 'dropped a message holding a NUL character'];
  return undefined;
}

// libotr needs the value of these callbacks before it can go on, so they are synchronous: a
// Promise (an async function) would be a silent "no answer". It is the caller's mistake,
// reported as ERR_OTR_CALLBACK naming the callback; the promise's own outcome is ignored.
function synchronous<T>(name: string, value: T): T {
  const then = (value as { then?: unknown } | null | undefined)?.then;
  if (typeof then !== 'function') return value;
  (value as unknown as Promise<unknown>).then(undefined, () => {});
  throw new OtrError(
    ErrorCodes.CALLBACK,
    `${name} returned a Promise: libotr needs its answer synchronously, so it cannot be an async function` +
      (name === 'onSmp' ? ' (return the answer, or return nothing and call smpRespond() when it is known)' : ''),
  );
}

function requireSecret(answer: unknown): void {
  if (typeof answer !== 'string' || answer.length === 0) throw invalid(`the SMP answer must be a non-empty string, got ${describe(answer)}`);
}
