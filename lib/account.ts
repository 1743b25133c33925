import { Contact } from './contact';
import type { OTR } from './otr';
import { fingerprintToHex, requireBoolean, requireText } from './validate';

/** One of our own identities: a name on a protocol, with its DSA key. */
export class Account {
  readonly ctx: OTR;
  readonly name: string;
  readonly protocol: string;
  #fingerprint: string;
  #instag: number;
  #contacts = new Map<string, Contact>();

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

  /**
   * Finds or creates a contact. A given fingerprint (40 hex digits or the human form) is
   * added to the contact, marked verified when `verified` is true, and written to the
   * contacts file before the promise resolves.
   */
  async contact(name: string, fingerprint?: string, verified = false): Promise<Contact> {
    requireText('name', name);
    const hex = fingerprint === undefined ? '' : fingerprintToHex(fingerprint);
    requireBoolean('verified', verified);
    await this.ctx._call((job, handle) => handle.addContact(job, this.name, this.protocol, name, hex, verified));
    return this._contactFromNative(name);
  }

  findContact(name: string): Contact | undefined {
    requireText('name', name);
    return this.#contacts.get(name);
  }

  contacts(): Contact[] {
    return [...this.#contacts.values()];
  }

  /** @internal */
  _contactFromNative(name: string): Contact {
    let contact = this.#contacts.get(name);
    if (!contact) {
      contact = new Contact(this, name);
      this.#contacts.set(name, contact);
    }
    return contact;
  }

  /** @internal */
  _update(fingerprint: string, instag: number): void {
    this.#fingerprint = fingerprint;
    this.#instag = instag;
  }
}
