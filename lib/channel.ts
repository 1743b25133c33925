import type { Account } from './account';
import { Instag, MessageEvent, Policy, SmpEvent, ErrorCode } from './constants';
import type { Contact } from './contact';
import { ErrorCodes, OtrError } from './errors';
import { CallbackFlag, ChannelOp, EffectKind } from './native';
import { statusWord, type Status } from './status';
import { invalid, requireInteger, requireText } from './validate';

export interface ChannelOptions {
  policy?: Policy | number;
  maxMessageSize?: number;
  onWrite: (channel: Channel, message: string) => void;
  onRead: (channel: Channel, message: string) => void;
  onGoneSecure?: (channel: Channel) => void;
  onGoneInsecure?: (channel: Channel) => void;
  onStillSecure?: (channel: Channel) => void;
  onUnverifiedFingerprint?: (channel: Channel, fingerprintHash: string, seenBefore: boolean) => void;
  onSymkey?: (channel: Channel, symkey: Buffer, use: number, useFor: string) => void;
  onTimer?: (channel: Channel, interval: number) => void;
  onSmp?: (channel: Channel, question?: string) => string | void;
  onError?: (channel: Channel, code: ErrorCode) => string | void;
  onEvent?: (channel: Channel, code: MessageEvent, message?: string) => void;
  onSmpEvent?: (channel: Channel, code: SmpEvent, progress: number) => void;
  onBeforeEncrypt?: (channel: Channel, message: string) => string;
  onAfterDecrypt?: (channel: Channel, message: string) => string;
  onIsContactLoggedIn?: (channel: Channel) => 1 | 0 | -1 | boolean;
}

const CALLBACKS = [
  'onWrite', 'onRead', 'onGoneSecure', 'onGoneInsecure', 'onStillSecure', 'onUnverifiedFingerprint',
  'onSymkey', 'onTimer', 'onSmp', 'onError', 'onEvent', 'onSmpEvent', 'onBeforeEncrypt',
  'onAfterDecrypt', 'onIsContactLoggedIn',
] as const;

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

// An OTR v3 fragment header ("?OTR|xxxxxxxx|xxxxxxxx,xxxxx,xxxxx,") plus its closing comma.
const FRAGMENT_OVERHEAD = 37;

const utf8 = new TextDecoder('utf-8');

/** An OTR conversation with one contact: every message in and out goes through it. */
export class Channel {
  readonly account: Account;
  readonly contact: Contact;
  readonly policy: number;
  readonly maxMessageSize: number;
  /** @internal */
  readonly _options: ChannelOptions;
  /** @internal */
  readonly _id: number;

  /** @internal */
  constructor(contact: Contact, options: ChannelOptions) {
    if (options === null || typeof options !== 'object') throw invalid('channel options must be an object');
    for (const name of CALLBACKS) {
      const callback = options[name];
      if (callback !== undefined && typeof callback !== 'function') throw invalid(`${name} must be a function`);
    }
    if (!options.onWrite) throw new OtrError(ErrorCodes.MISSING_CALLBACK, 'onWrite is required: it delivers wire messages to the contact');
    if (!options.onRead) throw new OtrError(ErrorCodes.MISSING_CALLBACK, 'onRead is required: it receives messages for the user');
    this.policy = requireInteger('policy', options.policy ?? Policy.OPPORTUNISTIC, 0, 0x7f);
    const size = requireInteger('maxMessageSize', options.maxMessageSize ?? MAX_MESSAGE_SIZE_BY_PROTOCOL[contact.account.protocol] ?? 0, 0, 0x7fffffff);
    if (size !== 0 && size <= FRAGMENT_OVERHEAD) {
      throw invalid(`maxMessageSize must be 0 (no fragmentation) or more than ${FRAGMENT_OVERHEAD}, the OTR fragment header; got ${size}`);
    }
    this.maxMessageSize = size;
    this.contact = contact;
    this.account = contact.account;
    this._options = { ...options };
    const flags =
      (options.onBeforeEncrypt ? CallbackFlag.BeforeEncrypt : 0) |
      (options.onAfterDecrypt ? CallbackFlag.AfterDecrypt : 0) |
      (options.onIsContactLoggedIn ? CallbackFlag.IsLoggedIn : 0) |
      (options.onError ? CallbackFlag.ErrorText : 0) |
      (options.onSmp ? CallbackFlag.Smp : 0);
    const account = this.account;
    this._id = account.ctx._registerChannel(this, (job, handle, id) =>
      handle.openChannel(job, id, account.name, account.protocol, contact.name, this.policy, size, flags),
    );
  }

  /** Status of the selected session. */
  get status(): Status {
    return statusWord(this.contact._state?.status ?? 0);
  }

  /** Sends the OTR query message (its text names the account). */
  async init(): Promise<void> {
    await this.#op(ChannelOp.Init);
  }

  /** Re-runs the AKE for fresh keys; writes meanwhile wait and are never sent in clear. */
  async refresh(): Promise<void> {
    await this.#op(ChannelOp.Refresh);
  }

  /** Ends every session with the contact (they are told when onIsContactLoggedIn allows). */
  async finish(): Promise<void> {
    await this.#op(ChannelOp.Finish);
  }

  /** The extra symmetric key; the contact's onSymkey receives the same bytes. */
  async createSymkey(use: number, useFor: string | Uint8Array): Promise<Buffer> {
    requireInteger('use', use, 0, 0xffffffff);
    let data: Buffer;
    if (typeof useFor === 'string') data = Buffer.from(useFor, 'utf8');
    else if (useFor instanceof Uint8Array) data = Buffer.from(useFor);
    else throw invalid('useFor must be a string or a Uint8Array');
    return (await this.#op(ChannelOp.Symkey, '', data, use)) as Buffer;
  }

  /** libotr's periodic poll (clears stale AKE state); see onTimer. */
  async ping(): Promise<void> {
    await this.#op(ChannelOp.Ping);
  }

  /** Starts SMP: the contact must answer `answer` (UTF-8), optionally to `question`. */
  async smpVerify(answer: string, question?: string): Promise<void> {
    requireSecret(answer);
    if (question === undefined) {
      await this.#op(ChannelOp.SmpVerify, answer, undefined, 0);
    } else {
      await this.#op(ChannelOp.SmpVerify, answer, requireText('question', question, { allowEmpty: true }), 1);
    }
  }

  /** Answers the contact's SMP request. */
  async smpRespond(answer: string): Promise<void> {
    requireSecret(answer);
    await this.#op(ChannelOp.SmpRespond, answer);
  }

  async smpAbort(): Promise<void> {
    await this.#op(ChannelOp.SmpAbort);
  }

  /** Sends a message: the wire text (encrypted, fragmented) goes to onWrite. */
  write(message: string): Promise<void> {
    // Not async: a bridge calls this for every message; one promise is enough.
    try {
      requireText('message', message);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#op(ChannelOp.Write, message) as Promise<void>;
  }

  /** Hands in anything received from the contact; messages for the user go to onRead. */
  read(input: string): Promise<void> {
    try {
      requireText('input', input, { allowEmpty: true });
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#op(ChannelOp.Read, input) as Promise<void>;
  }

  /** Instance tags the contact has used with us. */
  sessions(): number[] {
    return (this.contact._state?.sessions ?? []).map((s) => s.instag).filter((tag) => tag !== 0);
  }

  /** The contact's instance tag in use now (0 when there is none). */
  get currentSession(): number {
    return this.contact._state?.current ?? 0;
  }

  /** Selects a session by instance tag or Instag selector; false if the tag is unknown. */
  async selectSession(id: number | Instag): Promise<boolean> {
    requireInteger('id', id, 0, 0xffffffff);
    return (await this.#op(ChannelOp.SelectSession, '', undefined, id)) as boolean;
  }

  #op(op: ChannelOp, text = '', data?: Buffer | string, number = 0): Promise<unknown> {
    return this.account.ctx._channelOp(this, op, text, data, number);
  }

  /** @internal Calls the user's callback for one effect. */
  _fire(kind: EffectKind, a: number, b: number, text: string | null, extra: unknown): void {
    const o = this._options;
    switch (kind) {
      case EffectKind.Write:
        o.onWrite(this, text ?? '');
        return;
      case EffectKind.Read:
        o.onRead(this, text ?? '');
        return;
      case EffectKind.GoneSecure:
        o.onGoneSecure?.(this);
        return;
      case EffectKind.GoneInsecure:
        o.onGoneInsecure?.(this);
        return;
      case EffectKind.StillSecure:
        o.onStillSecure?.(this);
        return;
      case EffectKind.NewFingerprint:
        o.onUnverifiedFingerprint?.(this, text ?? '', a === 1);
        return;
      case EffectKind.Symkey: {
        const [key, useFor] = extra as [Buffer, Buffer];
        o.onSymkey?.(this, key, a, utf8.decode(useFor));
        return;
      }
      case EffectKind.Timer:
        o.onTimer?.(this, a);
        return;
      case EffectKind.SmpEvent:
        o.onSmpEvent?.(this, a, b);
        return;
      case EffectKind.MsgEvent:
        o.onEvent?.(this, a, text ?? undefined);
        return;
      default:
        return;
    }
  }
}

function requireSecret(answer: unknown): void {
  if (typeof answer !== 'string' || answer.length === 0) throw invalid('the SMP answer must be a non-empty string');
}
