// An account: one of our own identities, with its contacts (one per name, renames in order)
// and the routers made for it. It reaches the OTR instance through AccountContext, which
// extends what its contacts, channels and routers ask; the public links of those to it
// (contact.account, channel.account, router.account) are declared at the end of this file.
import type { Channel, ChannelOptions } from './channel';
import { Contact, type ContactContext } from './contact';
import { ErrorCodes, OtrError } from './errors';
import { Router, type RouterContext } from './router';
import { fingerprintToHex, requireBoolean, requireName, requireText } from './validate';

/** @internal What an account (and what it holds) asks of the OTR instance (the instance's internals implement it). */
export interface AccountContext extends ContactContext, RouterContext {
  /** A new Contact's id (never reused). */
  newContactId(): number;
  /** A contact now known by its id (effects name it so). */
  contactAdded(contact: Contact): void;
  /** A contact no longer known. */
  contactRemoved(contact: Contact): void;
}

// An operation on names that waits until no rename involving them is on its way, and until
// every operation on them queued before it has run.
interface Deferred {
  names: string[];
  run(): void;
}

/** One of our own identities: a name on a protocol, with its DSA key. */
export class Account {
  /** Our name on the protocol (`alice@example.org`). */
  readonly name: string;
  /** The protocol identifier, as libotr's files store it (`prpl-jabber`, `prpl-irc`, …). */
  readonly protocol: string;
  #fingerprint: string;
  #instag: number;
  // One contact per name, always as the addon last confirmed it: a rename moves a contact here
  // only once the addon has made it (see _rename).
  #contacts = new Map<string, Contact>();
  // Names a rename on its way involves (how many), and what waits for them, in call order.
  #holds = new Map<string, number>();
  #deferred: Deferred[] = [];
  #waiting = new Map<string, number>();
  #flushing = false;
  #queryText: string | undefined;
  readonly #context: AccountContext;

  /** @internal */
  constructor(otr: object, context: AccountContext, name: string, protocol: string, fingerprint: string, instag: number) {
    // Published as `ctx`, which otr.ts declares (the OTR instance): here it is only an object.
    Object.assign(this, { ctx: otr });
    this.#context = context;
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
   * contacts file before the promise resolves. While a rename to or from `name` is on its
   * way, waits for it.
   *
   * Resolves with the name's contact once libotr knows it (and, with a fingerprint, once it is
   * written, or stored by a shared store): the same object for the same name while it lives;
   * a new one if the contact was forgotten meanwhile. Rejects with ERR_OTR_INVALID_ARGUMENT
   * or ERR_OTR_BAD_FINGERPRINT for bad arguments, ERR_OTR_CLOSED after close(),
   * ERR_OTR_FILE_WRITE when the file cannot be written; nothing is kept then.
   */
  async contact(name: string, fingerprint?: string, verified = false): Promise<Contact> {
    requireName('name', name);
    const hex = fingerprint === undefined ? '' : fingerprintToHex(fingerprint);
    requireBoolean('verified', verified);
    this.#context.ensureOpen();
    if (this._nameBusy(name)) await this._whenFree([name], () => Promise.resolve());
    const existing = this.#contacts.get(name);
    const contact = existing ?? this.#add(name);
    try {
      await this.#context.call(
        (job, handle) => handle.addContact(job, contact._id, this.name, this.protocol, name, hex, verified),
        contact.existingChannel, // a call in flight on it: eviction passes it by
      );
    } catch (error) {
      // Nothing kept on failure: a contact made by this call and still empty goes again.
      if (!existing && !contact.existingChannel && contact._state === undefined) this._removeContact(contact);
      throw error;
    }
    await this.#context.storeSettled();
    // Forgotten meanwhile (forget(), a rename taking the name): the name's contact now.
    return contact._isForgotten ? this._contactFromNative(name) : contact;
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
   * The options are checked now, as contact.channel() checks them: a misspelt name or a value
   * out of range throws ERR_OTR_INVALID_ARGUMENT here, not at the first message.
   */
  router(options: ChannelOptions): Router {
    this.#context.ensureOpen();
    return new Router(this, this.#context, options);
  }

  #add(name: string): Contact {
    const contact = new Contact(this, this.#context, name, this.#context.newContactId());
    this.#contacts.set(name, contact);
    this.#context.contactAdded(contact);
    return contact;
  }

  /** @internal */
  _removeContact(contact: Contact): void {
    if (this.#contacts.get(contact.name) === contact) this.#contacts.delete(contact.name);
    this.#context.contactRemoved(contact);
  }

  /**
   * @internal The contact of `name` with an open channel, for a router: made now (and its
   * channel with `options`) if there is none. Nothing is left behind when opening fails.
   */
  _routedChannel(name: string, options: ChannelOptions, waited: boolean): Channel {
    requireName('name', name);
    this.#context.ensureOpen();
    if (!waited && this._nameBusy(name)) {
      throw new OtrError(
        ErrorCodes.RENAMING,
        `a rename to or from ${name} is on its way: router.read() and router.write() wait for it; await the rename before asking for the channel`,
      );
    }
    const known = this.#contacts.get(name);
    if (known?.existingChannel) return known.existingChannel;
    // Checked before anything is made: a refused channel leaves no contact behind.
    this.#context.store?._requireOwner(this.name, this.protocol, name);
    const contact = known ?? this.#add(name);
    try {
      return contact.channel(options);
    } catch (error) {
      if (!known) this._removeContact(contact);
      throw error;
    }
  }

  /** @internal A contact the addon reported under `name` (loaded, or what a forget kept). */
  _contactFromNative(name: string): Contact {
    return this.#contacts.get(name) ?? this.#add(name);
  }

  /** @internal Whether a rename on its way involves `name` (or operations wait for it). */
  _nameBusy(name: string): boolean {
    return (this.#holds.get(name) ?? 0) > 0 || (this.#waiting.get(name) ?? 0) > 0;
  }

  /**
   * @internal Runs `operation` once no rename on its way involves `names` and everything
   * queued before it on any of them has run. Only renames hold names (until they settle), and
   * what waits holds nothing, so waiting always ends.
   */
  _whenFree<T>(names: string[], operation: () => Promise<T>): Promise<T> {
    if (!names.some((name) => this._nameBusy(name))) return operation();
    return new Promise<T>((resolve, reject) => {
      for (const name of names) this.#waiting.set(name, (this.#waiting.get(name) ?? 0) + 1);
      this.#deferred.push({
        names,
        run: () => {
          try {
            operation().then(resolve, reject);
          } catch (error) {
            reject(error);
          }
        },
      });
    });
  }

  /** @internal Marks names busy until the returned function is called (a rename on its way). */
  _hold(names: string[]): () => void {
    for (const name of names) this.#holds.set(name, (this.#holds.get(name) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      for (const name of names) {
        const left = (this.#holds.get(name) ?? 1) - 1;
        if (left > 0) this.#holds.set(name, left);
        else this.#holds.delete(name);
      }
      this.#flush();
    };
  }

  // Runs, in call order, what waited for names no rename holds any more. An operation still
  // waiting keeps later ones on any of its names waiting too (per-name order).
  #flush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      const blocked = new Set<string>();
      for (let i = 0; i < this.#deferred.length;) {
        const next = this.#deferred[i];
        if (next.names.some((name) => (this.#holds.get(name) ?? 0) > 0 || blocked.has(name))) {
          for (const name of next.names) blocked.add(name);
          i++;
          continue;
        }
        this.#deferred.splice(i, 1);
        for (const name of next.names) {
          const left = (this.#waiting.get(name) ?? 1) - 1;
          if (left > 0) this.#waiting.set(name, left);
          else this.#waiting.delete(name);
        }
        next.run();
      }
    } finally {
      this.#flushing = false;
    }
  }

  /**
   * @internal A nick change. Both names are busy until it settles (routers wait); the contact
   * moves to `to` only once the addon has renamed it (see _renamed), so JS never shows a name
   * the addon refused. Renames of one contact run one after the other.
   */
  _rename(contact: Contact, to: string): Promise<void> {
    const release = this._hold([contact.name, to]);
    const run = async (): Promise<void> => {
      if (contact._isForgotten) throw new OtrError(ErrorCodes.CLOSED, `${contact.name} was forgotten`);
      const from = contact.name;
      if (from === to) return;
      const store = this.#context.store;
      if (store) await store._beforeRename(this.name, this.protocol, from, to);
      try {
        await this.#context.call((job, handle) => handle.renameContact(job, contact._id, this.name, this.protocol, from, to), contact.existingChannel);
      } catch (error) {
        if (store) await store._renameRefused(this.name, this.protocol, from, to);
        throw error;
      }
      this._renamed(contact, to);
      await this.#context.storeSettled();
    };
    const done = contact._queueRename(run);
    done.then(release, release);
    return done;
  }

  /**
   * @internal The addon renamed `contact` to `to` (seen in its state, or when the rename
   * resolved): a contact JS still has under `to` was a squatter the addon forgot.
   */
  _renamed(contact: Contact, to: string): void {
    if (contact.name === to || contact._isForgotten) return;
    const squatter = this.#contacts.get(to);
    if (squatter && squatter !== contact) squatter._displaced(contact);
    const from = contact.name;
    if (this.#contacts.get(from) === contact) this.#contacts.delete(from);
    this.#contacts.set(to, contact);
    contact._setName(to);
    this.#context.store?._renamed(this.name, this.protocol, from, to);
  }

  /** @internal */
  _update(fingerprint: string, instag: number): void {
    this.#fingerprint = fingerprint;
    this.#instag = instag;
  }
}

declare module './contact' {
  interface Contact {
    /** The account this contact talks to. */
    readonly account: Account;
  }
}

declare module './channel' {
  interface Channel {
    /** The account this channel speaks for. */
    readonly account: Account;
  }
}

declare module './router' {
  interface Router {
    /** The account whose contacts this router serves. */
    readonly account: Account;
  }
}
