import type { Contact } from './contact';
import { ErrorCodes, OtrError } from './errors';
import type { NativeFingerprint } from './native';
import { statusWord, type Status } from './status';
import { hexToHuman, requireBoolean } from './validate';

/** A contact's DSA key fingerprint, as libotr knows it, with our trust in it. */
export class Fingerprint {
  /** Whose fingerprint this is. */
  readonly contact: Contact;
  /** Human form: `12345678 90ABCDEF 12345678 90ABCDEF 12345678`. */
  readonly hash: string;
  /** @internal 40 lower-case hex digits */
  readonly _hex: string;
  #trust = '';
  #status = 0;
  #forgotten = false;

  /** @internal */
  constructor(contact: Contact, hex: string) {
    this.contact = contact;
    this._hex = hex;
    this.hash = hexToHuman(hex);
  }

  /** The status of the session using this fingerprint, or 'Unused'. */
  get status(): Status {
    return statusWord(this.#status);
  }

  /** Whether we trust it (any non-empty trust word). */
  get isVerified(): boolean {
    return this.#trust !== '';
  }

  /** libotr's trust word: '' (untrusted), 'verified', 'smp', or what another client wrote. */
  get trust(): string {
    return this.#trust;
  }

  /**
   * Sets or really removes trust, written to the contacts file (with a shared store: to the
   * database, and announced to the other nodes) before the promise resolves.
   *
   * Resolves with `verified` as given, once written. `true` keeps a trust word already there
   * (`'smp'`) and writes `'verified'` otherwise; `false` writes none. Rejects with
   * ERR_OTR_UNKNOWN_FINGERPRINT once the fingerprint was forgotten, ERR_OTR_CLOSED after
   * close() or for a forgotten contact, ERR_OTR_FILE_WRITE when the file cannot be written.
   */
  async setVerified(verified: boolean): Promise<boolean> {
    requireBoolean('verified', verified);
    this.#ensureKnown();
    const account = this.contact.account;
    // Counted as a call in flight on the contact's channel: eviction (maxContacts) passes it by.
    const result = await account.ctx._call(
      (job, handle) => handle.setTrust(job, this.contact._id, account.name, account.protocol, this.contact.name, this._hex, verified),
      false,
      this.contact.existingChannel,
    );
    await account.ctx._storeSettled();
    return result as boolean;
  }

  /**
   * Drops this fingerprint. Resolves once it is gone from the file (and a shared store).
   * Rejects with ERR_OTR_FINGERPRINT_IN_USE while a session uses it,
   * ERR_OTR_UNKNOWN_FINGERPRINT when it was forgotten already, ERR_OTR_CLOSED after close().
   */
  async forget(): Promise<void> {
    this.#ensureKnown();
    const account = this.contact.account;
    await account.ctx._call(
      (job, handle) => handle.forgetFingerprint(job, this.contact._id, account.name, account.protocol, this.contact.name, this._hex),
      false,
      this.contact.existingChannel,
    );
    await account.ctx._storeSettled();
  }

  #ensureKnown(): void {
    if (this.#forgotten) throw new OtrError(ErrorCodes.UNKNOWN_FINGERPRINT, `fingerprint ${this.hash} was forgotten`);
    if (this.contact._isForgotten) {
      throw new OtrError(ErrorCodes.CLOSED, `${this.contact.name} was forgotten: account.contact() gives its contact now`);
    }
  }

  /** @internal */
  _update(state: NativeFingerprint): void {
    this.#trust = state.trust;
    this.#status = state.status;
  }

  /** @internal */
  _forgotten(): void {
    this.#forgotten = true;
    this.#status = 0;
  }
}
