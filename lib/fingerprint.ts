// A fingerprint of a contact, with our trust in it. It reaches its contact through
// FingerprintOwner (the Contact), which makes the engine calls.
import { ErrorCodes, OtrError } from './errors';
import type { NativeFingerprint } from './native';
import { statusWord, type Status } from './status';
import { hexToHuman, requireBoolean } from './validate';

/** @internal What a fingerprint asks of its contact (the Contact implements it). */
export interface FingerprintOwner {
  readonly name: string;
  readonly _isForgotten: boolean;
  /** Sets the trust in one of its fingerprints; resolves once it is stored. */
  _setTrust(hex: string, verified: boolean): Promise<boolean>;
  /** Drops one of its fingerprints; resolves once it is stored. */
  _forgetFingerprint(hex: string): Promise<void>;
}

/** A contact's DSA key fingerprint, as libotr knows it, with our trust in it. */
export class Fingerprint {
  /** Human form: `12345678 90ABCDEF 12345678 90ABCDEF 12345678`. */
  readonly hash: string;
  /** @internal 40 lower-case hex digits */
  readonly _hex: string;
  #trust = '';
  #status = 0;
  #forgotten = false;
  readonly #owner: FingerprintOwner;

  /** @internal */
  constructor(owner: FingerprintOwner, hex: string) {
    // Published as `contact`, which contact.ts declares (a Contact): here it is only the owner.
    Object.assign(this, { contact: owner });
    this.#owner = owner;
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
    return this.#owner._setTrust(this._hex, verified);
  }

  /**
   * Drops this fingerprint. Resolves once it is gone from the file (and a shared store).
   * Rejects with ERR_OTR_FINGERPRINT_IN_USE while a session uses it,
   * ERR_OTR_UNKNOWN_FINGERPRINT when it was forgotten already, ERR_OTR_CLOSED after close().
   */
  async forget(): Promise<void> {
    this.#ensureKnown();
    await this.#owner._forgetFingerprint(this._hex);
  }

  #ensureKnown(): void {
    if (this.#forgotten) throw new OtrError(ErrorCodes.UNKNOWN_FINGERPRINT, `fingerprint ${this.hash} was forgotten`);
    if (this.#owner._isForgotten) {
      throw new OtrError(ErrorCodes.CLOSED, `${this.#owner.name} was forgotten: account.contact() gives its contact now`);
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
