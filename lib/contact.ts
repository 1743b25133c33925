// A contact: someone an account talks to, its fingerprints and its one channel. It reaches its
// account through ContactOwner and the OTR instance through ContactContext; the public links
// of its channel and fingerprints to it (channel.contact, fingerprint.contact) are declared at
// the end of this file.
import { Channel, type ChannelAccount, type ChannelContext, type ChannelOptions } from './channel';
import { ErrorCodes, OtrError } from './errors';
import { Fingerprint } from './fingerprint';
import type { NativeContact, NativeHandle } from './native';
import type { Store } from './store/store';
import { describe, hexToHuman, invalid, rejectUnknownOptions, requireBoolean, requireName } from './validate';

/** How {@link Contact.forget} and eviction free a contact. */
interface ForgetHow {
  dropUnverified: boolean;
  endSessions: boolean;
  reason: string;
}

/** @internal What a contact (and its channel) asks of the OTR instance (the instance's internals implement it). */
export interface ContactContext extends ChannelContext {
  /** Throws ERR_OTR_CLOSED once otr.close() was called. */
  ensureOpen(): void;
  /** One engine job; with `channel`, counted as a call in flight on it (eviction passes it by). */
  call(submit: (job: number, handle: NativeHandle) => void, channel?: Channel): Promise<unknown>;
  /** Settles when the store holds every change reported so far. */
  storeSettled(): Promise<void>;
  /** The store, if the instance was opened over one. */
  readonly store: Store | undefined;
  /** 'contactEvicted' on the instance. */
  contactEvicted(contact: Contact): void;
}

/** @internal What a contact asks of its account (the Account implements it). */
export interface ContactOwner extends ChannelAccount {
  _removeContact(contact: Contact): void;
  _rename(contact: Contact, to: string): Promise<void>;
}

/** Someone an account talks to, with the fingerprints libotr has seen or was given. */
export class Contact {
  /**
   * @internal Who this object is to the addon: it binds the id to the contact of the name on
   * first use, and resolves it by id from then on (a call made before a rename reaches the
   * same contact after it). Never reused.
   */
  readonly _id: number;
  #name: string;
  #fingerprints = new Map<string, Fingerprint>();
  #state: NativeContact | undefined;
  #channel: Channel | undefined;
  #forgotten = false;
  #renames: Promise<void> = Promise.resolve();
  readonly #owner: ContactOwner;
  readonly #context: ContactContext;

  /** @internal */
  constructor(owner: ContactOwner, context: ContactContext, name: string, id: number) {
    // Published as `account`, which account.ts declares (an Account): here it is only the owner.
    Object.assign(this, { account: owner });
    this.#owner = owner;
    this.#context = context;
    this.#name = name;
    this._id = id;
  }

  /** The contact's name on the network (a nick, a JID); see rename(). */
  get name(): string {
    return this.#name;
  }

  /**
   * Follows a nick change: the contact, its channel, sessions and trust move to `newName`,
   * and the fingerprints file is rewritten under it before the promise resolves. The name
   * changes here when the addon has made the change (calls made meanwhile reach this contact
   * whatever its name; routers wait for the rename before routing either name). The old name
   * is free afterwards: a message from it later is a new contact. A `newName` held by a
   * contact that has nothing to lose (no verified fingerprint, no encrypted session in this
   * process, no writes waiting) is taken from it: that contact is forgotten and reported as
   * `'contactEvicted'`. Any other holder makes it reject with ERR_OTR_CONTACT_EXISTS. With a
   * PostgresStore, the new name's lease is taken first (and the old name's, unless held): another
   * node owning either makes it reject with ERR_OTR_CONTACT_OWNED, nothing changed; the old
   * name's lease is given up after (docs/MULTI-NODE.md).
   *
   * Resolves once the contact is known under `newName` (the file rewritten). Rejects with
   * ERR_OTR_CONTACT_EXISTS (nothing changed), ERR_OTR_INVALID_ARGUMENT for a bad name,
   * ERR_OTR_CLOSED after close() or for a forgotten contact.
   */
  rename(newName: string): Promise<void> {
    try {
      requireName('newName', newName);
      this.#context.ensureOpen();
      if (this.#forgotten) throw new OtrError(ErrorCodes.CLOSED, `${this.#name} was forgotten`);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#owner._rename(this, newName);
  }

  /** @internal Runs renames of this contact one after the other. */
  _queueRename(run: () => Promise<void>): Promise<void> {
    const done = this.#renames.then(run, run);
    this.#renames = done.catch(() => {});
    return done;
  }

  /** The channel opened to this contact, if any. */
  get existingChannel(): Channel | undefined {
    return this.#channel;
  }

  /** @internal */
  _setName(name: string): void {
    this.#name = name;
  }

  /** @internal */
  get _isForgotten(): boolean {
    return this.#forgotten;
  }

  /** The contact's fingerprints: seen in an AKE, or given to {@link Account.contact}. */
  fingerprints(): Fingerprint[] {
    return [...this.#fingerprints.values()];
  }

  /** @internal A fingerprint's human form, from the one the contact has (no formatting per message). */
  _humanFingerprint(hex: string): string {
    return this.#fingerprints.get(hex)?.hash ?? hexToHuman(hex);
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
   * keeps for it, and removes this object from the account. Its fingerprints stay in the
   * contacts file — unless `unverifiedFingerprints` is true: then those not verified go (the
   * file is rewritten before the promise resolves), so a bridge's file does not grow with
   * every passing nickname. Fingerprints that stay are shown under the name by a new Contact
   * object (as a restart would show them); account.contact(name) gives it.
   *
   * Resolves once libotr's state for the contact is freed (and the file rewritten when
   * fingerprints went). Rejects with ERR_OTR_CLOSED after otr.close(), ERR_OTR_INVALID_ARGUMENT
   * for wrong options; a second forget() of the same contact resolves.
   */
  forget(options: { unverifiedFingerprints?: boolean } = {}): Promise<void> {
    let unverifiedFingerprints: boolean;
    try {
      if (options === null || typeof options !== 'object') throw invalid(`contact.forget() options must be an object, got ${describe(options)}`);
      rejectUnknownOptions('contact.forget()', options, ['unverifiedFingerprints']);
      unverifiedFingerprints = requireBoolean('unverifiedFingerprints', options.unverifiedFingerprints ?? false);
      this.#context.ensureOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    return this._forget({ dropUnverified: unverifiedFingerprints, endSessions: false, reason: `${this.name} was forgotten` });
  }

  /** @internal */
  _forget(how: ForgetHow): Promise<void> {
    if (this.#forgotten) return Promise.resolve();
    this.#forgotten = true;
    this.#owner._removeContact(this);
    const channel = this.#channel;
    if (channel && !channel._closed) return channel._close(how.reason, how.dropUnverified, how.endSessions);
    return this._forgetNative(how.dropUnverified, how.endSessions);
  }

  /** @internal Frees what the addon keeps for this contact (and its channel). */
  _forgetNative(dropUnverified: boolean, endSessions: boolean): Promise<void> {
    const account = this.#owner;
    return this.#context
      .call((job, handle) => handle.forgetContact(job, this._id, account.name, account.protocol, this.#name, dropUnverified, endSessions))
      .then(() => this.#context.storeSettled());
  }

  /** @internal Sets the trust in one of its fingerprints (Fingerprint.setVerified). */
  async _setTrust(hex: string, verified: boolean): Promise<boolean> {
    const account = this.#owner;
    // Counted as a call in flight on the contact's channel: eviction (maxContacts) passes it by.
    const result = await this.#context.call(
      (job, handle) => handle.setTrust(job, this._id, account.name, account.protocol, this.#name, hex, verified),
      this.#channel,
    );
    await this.#context.storeSettled();
    return result as boolean;
  }

  /** @internal Drops one of its fingerprints (Fingerprint.forget). */
  async _forgetFingerprint(hex: string): Promise<void> {
    const account = this.#owner;
    await this.#context.call((job, handle) => handle.forgetFingerprint(job, this._id, account.name, account.protocol, this.#name, hex), this.#channel);
    await this.#context.storeSettled();
  }

  /**
   * @internal A rename of `by` took this contact's name: the addon forgot this contact (it had
   * nothing to lose) and its channel.
   */
  _displaced(by: Contact): void {
    if (this.#forgotten) return;
    this.#forgotten = true;
    this.#owner._removeContact(this);
    this.#channel?._closedByAddon(`${this.#name} was taken by ${by.name}'s rename`);
    this.#context.contactEvicted(this);
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
    this.#context.store?._requireOwner(this.#owner.name, this.#owner.protocol, this.#name);
    if (this.#channel) {
      throw new OtrError(ErrorCodes.CHANNEL_EXISTS, `a channel to ${this.name} from ${this.#owner.name} is already open`);
    }
    const channel = new Channel(this, this.#owner, this.#context, options);
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

declare module './channel' {
  interface Channel {
    /** The contact it speaks to. */
    readonly contact: Contact;
  }
}

declare module './fingerprint' {
  interface Fingerprint {
    /** Whose fingerprint this is. */
    readonly contact: Contact;
  }
}
