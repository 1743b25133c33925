import type { Account } from './account';
import { Channel, type ChannelOptions } from './channel';
import { ErrorCodes, OtrError } from './errors';
import { Fingerprint } from './fingerprint';
import type { NativeContact } from './native';
import { requireBoolean, requireName } from './validate';

/** Someone an account talks to, with the fingerprints libotr has seen or was given. */
export class Contact {
  /** The account this contact talks to. */
  readonly account: Account;
  #name: string;
  #fingerprints = new Map<string, Fingerprint>();
  #state: NativeContact | undefined;
  #channel: Channel | undefined;
  #forgotten = false;

  /** @internal */
  constructor(account: Account, name: string) {
    this.account = account;
    this.#name = name;
  }

  /** The contact's name on the network (a nick, a JID); see rename(). */
  get name(): string {
    return this.#name;
  }

  /**
   * Follows a nick change: the contact, its channel, sessions and trust move to `newName` at
   * once (messages handed in afterwards under the new name reach this channel), and the
   * fingerprints file is rewritten under it before the promise resolves. The old name is
   * free: a message from it later is a new contact. Rejects with ERR_OTR_CONTACT_EXISTS if
   * `newName` is already a contact of the account.
   */
  rename(newName: string): Promise<void> {
    try {
      requireName('newName', newName);
      this.account.ctx._ensureOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    if (newName === this.#name) return Promise.resolve();
    return this.account._rename(this, this.#name, newName);
  }

  /** The channel opened to this contact, if any. */
  get existingChannel(): Channel | undefined {
    return this.#channel;
  }

  /** @internal */
  _setName(name: string): void {
    this.#name = name;
  }

  /** The contact's fingerprints: seen in an AKE, or given to {@link Account.contact}. */
  fingerprints(): Fingerprint[] {
    return [...this.#fingerprints.values()];
  }

  /** The fingerprint of the session now selected, if it has one. */
  get activeFingerprint(): Fingerprint | undefined {
    const state = this.#state;
    if (!state) return undefined;
    const session = state.sessions.find((s) => s.instag === state.current);
    return session && session.fingerprint ? this.#fingerprints.get(session.fingerprint) : undefined;
  }

  /**
   * Forgets the contact: closes its channel (see Channel.close()), frees everything libotr
   * keeps for it, and removes it from the account. Its fingerprints stay in the contacts
   * file — unless `unverifiedFingerprints` is true: then those not verified go (the file is
   * rewritten before the promise resolves), so a bridge's file does not grow with every
   * passing nickname. account.contact(name) later makes a new contact.
   */
  forget({ unverifiedFingerprints = false }: { unverifiedFingerprints?: boolean } = {}): Promise<void> {
    try {
      requireBoolean('unverifiedFingerprints', unverifiedFingerprints);
      this.account.ctx._ensureOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    return this._forget(unverifiedFingerprints);
  }

  /** @internal */
  _forget(dropUnverified: boolean): Promise<void> {
    this.#forgotten = true;
    this.account._removeContact(this);
    const channel = this.#channel;
    if (channel && !channel._closed) return channel._close(`${this.name} was forgotten`, dropUnverified);
    const account = this.account;
    return account.ctx
      ._call((job, handle) => handle.forgetContact(job, account.name, account.protocol, this.name, dropUnverified))
      .then(() => account.ctx._storeSettled());
  }

  /** @internal */
  _channelClosed(channel: Channel): void {
    if (this.#channel === channel) this.#channel = undefined;
  }

  /** Opens the channel to this contact (one per contact: libotr keeps one set of sessions). */
  channel(options: ChannelOptions): Channel {
    if (this.#forgotten) {
      throw new OtrError(ErrorCodes.CLOSED, `${this.name} was forgotten: account.contact() gives a new contact`);
    }
    this.account.ctx.store?._requireOwner(this.account.name, this.account.protocol, this.#name);
    if (this.#channel) {
      throw new OtrError(ErrorCodes.CHANNEL_EXISTS, `a channel to ${this.name} from ${this.account.name} is already open`);
    }
    const channel = new Channel(this, options);
    this.#channel = channel;
    return channel;
  }

  /** @internal */
  get _state(): NativeContact | undefined {
    return this.#state;
  }

  /** @internal */
  _update(state: NativeContact): void {
    this.#state = state;
    const seen = new Set<string>();
    for (const fp of state.fingerprints) {
      seen.add(fp.hex);
      let fingerprint = this.#fingerprints.get(fp.hex);
      if (!fingerprint) {
        fingerprint = new Fingerprint(this, fp.hex);
        this.#fingerprints.set(fp.hex, fingerprint);
      }
      fingerprint._update(fp);
    }
    for (const [hex, fingerprint] of this.#fingerprints) {
      if (!seen.has(hex)) {
        fingerprint._forgotten();
        this.#fingerprints.delete(hex);
      }
    }
  }
}
