import type { ChannelOptions } from './channel';
import { Contact } from './contact';
import { ErrorCodes, OtrError } from './errors';
import type { OTR } from './otr';
import { Router } from './router';
import { fingerprintToHex, requireBoolean, requireName, requireText } from './validate';

/** One of our own identities: a name on a protocol, with its DSA key. */
export class Account {
  /** The {@link OTR} instance the account belongs to. */
  readonly ctx: OTR;
  /** Our name on the protocol (`alice@example.org`). */
  readonly name: string;
  /** The protocol identifier, as libotr's files store it (`prpl-jabber`, `prpl-irc`, …). */
  readonly protocol: string;
  #fingerprint: string;
  #instag: number;
  #contacts = new Map<string, Contact>();
  // Old name → contact, while a rename is on its way to the worker: state the worker sent
  // under the old name before the rename still belongs to the renamed contact.
  #renaming = new Map<string, Contact>();
  #queryText: string | undefined;

  /** @internal */
  constructor(ctx: OTR, name: string, protocol: string, fingerprint: string, instag: number) {
    this.ctx = ctx;
    this.name = name;
    this.protocol = protocol;
    this.#fingerprint = fingerprint;
    this.#instag = instag;
  }

  /** Our key's fingerprint, human form: `12345678 90ABCDEF 12345678 90ABCDEF 12345678`. */
  get fingerprint(): string {
    return this.#fingerprint;
  }

  /** Our instance tag for this account. */
  get instanceTag(): number {
    return this.#instag;
  }

  /** The human-readable part of this account's OTR queries, unless a channel sets its own. */
  get queryText(): string | undefined {
    return this.#queryText;
  }

  /** Sets it (undefined: the OTR instance's). */
  set queryText(text: string | undefined) {
    this.#queryText = text === undefined ? undefined : requireText('queryText', text, { allowEmpty: true });
  }

  /**
   * Finds or creates a contact. A given fingerprint (40 hex digits or the human form) is
   * added to the contact, marked verified when `verified` is true, and written to the
   * contacts file before the promise resolves.
   */
  async contact(name: string, fingerprint?: string, verified = false): Promise<Contact> {
    requireName('name', name);
    const hex = fingerprint === undefined ? '' : fingerprintToHex(fingerprint);
    requireBoolean('verified', verified);
    await this.ctx._call(
      (job, handle) => handle.addContact(job, this.name, this.protocol, name, hex, verified),
      false,
      this.findContact(name)?.existingChannel, // a call in flight on it: eviction passes it by
    );
    await this.ctx._storeSettled();
    return this._contactFromNative(name);
  }

  /** The contact if it is known; never creates one. */
  findContact(name: string): Contact | undefined {
    requireName('name', name);
    return this.#contacts.get(name);
  }

  /** Every known contact of this account. */
  contacts(): Contact[] {
    return [...this.#contacts.values()];
  }

  /**
   * A router for a bridge: `router.read(name, text)` and `router.write(name, text)` find the
   * contact's channel, opening it with `options` on first use, synchronously — so messages
   * are handed to the library in the order they arrived, with no promise cache in the app.
   */
  router(options: ChannelOptions): Router {
    this.ctx._ensureOpen();
    return new Router(this, options);
  }

  /** @internal */
  _removeContact(contact: Contact): void {
    if (this.#contacts.get(contact.name) === contact) this.#contacts.delete(contact.name);
  }

  /** @internal The contact, created on this side at once (libotr creates its own lazily). */
  _contactNow(name: string): Contact {
    requireName('name', name);
    this.ctx._ensureOpen();
    let contact = this.#contacts.get(name);
    if (!contact) {
      contact = new Contact(this, name);
      this.#contacts.set(name, contact);
    }
    return contact;
  }

  /** @internal */
  _contactFromNative(name: string): Contact {
    let contact = this.#contacts.get(name) ?? this.#renaming.get(name);
    if (!contact) {
      contact = new Contact(this, name);
      this.#contacts.set(name, contact);
    }
    return contact;
  }

  /** @internal Moves the contact to its new name now; the worker follows in queue order. */
  _rename(contact: Contact, from: string, to: string): Promise<void> {
    if (this.#contacts.has(to)) {
      return Promise.reject(new OtrError(ErrorCodes.CONTACT_EXISTS, `${to} is already a contact of ${this.name}: forget it first, or rename it away`));
    }
    let done: Promise<unknown>;
    try {
      done = this.ctx._call((job, handle) => handle.renameContact(job, this.name, this.protocol, from, to));
    } catch (error) {
      return Promise.reject(error);
    }
    this.#contacts.delete(from);
    this.#contacts.set(to, contact);
    this.#renaming.set(from, contact);
    contact._setName(to);
    this.ctx.store?._renamed(this.name, this.protocol, from, to);
    return done.then(
      () => {
        if (this.#renaming.get(from) === contact) this.#renaming.delete(from);
        return this.ctx._storeSettled();
      },
      (error: unknown) => {
        // The worker refused: put everything back as it was.
        if (this.#renaming.get(from) === contact) this.#renaming.delete(from);
        if (this.#contacts.get(to) === contact && !this.#contacts.has(from)) {
          this.#contacts.delete(to);
          this.#contacts.set(from, contact);
          contact._setName(from);
        }
        throw error;
      },
    );
  }

  /** @internal */
  _update(fingerprint: string, instag: number): void {
    this.#fingerprint = fingerprint;
    this.#instag = instag;
  }
}
