/** The stable `code` of every {@link OtrError}, by name. */
export const ErrorCodes = {
  /** An argument has the wrong type or value. */
  INVALID_ARGUMENT: 'ERR_OTR_INVALID_ARGUMENT',
  /** A channel was opened without `onWrite` or `onRead`. */
  MISSING_CALLBACK: 'ERR_OTR_MISSING_CALLBACK',
  /** Not a fingerprint: 40 hex digits, or libotr's human form, were expected. */
  BAD_FINGERPRINT: 'ERR_OTR_BAD_FINGERPRINT',
  /** The `OTR` instance is closed. */
  CLOSED: 'ERR_OTR_CLOSED',
  /** The contact already has a channel (one per contact). */
  CHANNEL_EXISTS: 'ERR_OTR_CHANNEL_EXISTS',
  /** A contact of that name already exists (renaming onto it is refused). */
  CONTACT_EXISTS: 'ERR_OTR_CONTACT_EXISTS',
  /** A rename to or from that name is on its way: `router.read`/`write` wait for it, `router.channel` cannot. */
  RENAMING: 'ERR_OTR_RENAMING',
  /** The fingerprint was forgotten. */
  UNKNOWN_FINGERPRINT: 'ERR_OTR_UNKNOWN_FINGERPRINT',
  /** The fingerprint is used by a session and cannot be forgotten now. */
  FINGERPRINT_IN_USE: 'ERR_OTR_FINGERPRINT_IN_USE',
  /** The operation needs an encrypted session. */
  NOT_PRIVATE: 'ERR_OTR_NOT_PRIVATE',
  /** libotr refused to derive the extra symmetric key. */
  SYMKEY: 'ERR_OTR_SYMKEY',
  /** libotr could not encrypt the message. */
  ENCRYPTION: 'ERR_OTR_ENCRYPTION',
  /** A callback threw (the cause is the thrown value). */
  CALLBACK: 'ERR_OTR_CALLBACK',
  /** The private key file exists but cannot be read or parsed, or its directory cannot be used. */
  PRIVKEY_FILE: 'ERR_OTR_PRIVKEY_FILE',
  /** The fingerprints file exists but cannot be read or parsed, or its directory cannot be used. */
  FINGERPRINTS_FILE: 'ERR_OTR_FINGERPRINTS_FILE',
  /** The instance tags file exists but cannot be read or parsed, or its directory cannot be used. */
  INSTAG_FILE: 'ERR_OTR_INSTAG_FILE',
  /** A file could not be written. */
  FILE_WRITE: 'ERR_OTR_FILE_WRITE',
  /** Generating a key failed. */
  KEYGEN: 'ERR_OTR_KEYGEN',
  /** libotr or libgcrypt could not be initialised. */
  INIT: 'ERR_OTR_INIT',
  /** The native addon could not be loaded; the message says why and what to do. */
  ADDON_LOAD: 'ERR_OTR_ADDON_LOAD',
  /** Another `OTR` instance, in this process or another, holds these files. */
  LOCKED: 'ERR_OTR_LOCKED',
  /** A lock file could not be used for a reason other than another holder. */
  LOCK: 'ERR_OTR_LOCK',
  /** A failure with no better code: a bug, please report it. */
  INTERNAL: 'ERR_OTR_INTERNAL',
  /** A shared store (PostgresStore) cannot be used: the database, its connection, `pg` missing, an account not in it. */
  STORE: 'ERR_OTR_STORE',
  /** Another node holds the contact's lease; `error.owner` names it. */
  CONTACT_OWNED: 'ERR_OTR_CONTACT_OWNED',
  /** A channel opened to a contact whose lease this node does not hold. */
  NOT_OWNER: 'ERR_OTR_NOT_OWNER',
} as const;

/** One of the {@link ErrorCodes} values: `'ERR_OTR_…'`. */
export type OtrErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Every failure the library reports: an `Error` with a stable {@link OtrError.code}. */
export class OtrError extends Error {
  /** Which failure this is; stable across versions, unlike the message. */
  readonly code: OtrErrorCode;

  /**
   * Made by the library for every failure it reports.
   * @param options.cause what caused it (a libgcrypt error, a thrown value)
   */
  constructor(code: OtrErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OtrError';
    this.code = code;
  }
}

const knownCodes = new Set<string>(Object.values(ErrorCodes));

// The addon reports failures as { code, message } with a code from the list above.
export function fromNative(error: unknown): OtrError {
  if (error instanceof OtrError) return error;
  const e = error as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' && knownCodes.has(e.code) ? (e.code as OtrErrorCode) : ErrorCodes.INTERNAL;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  return new OtrError(code, message, { cause: error });
}
