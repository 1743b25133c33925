// Every failure the library reports is an OtrError with one of these stable codes.
export const ErrorCodes = {
  INVALID_ARGUMENT: 'ERR_OTR_INVALID_ARGUMENT',
  MISSING_CALLBACK: 'ERR_OTR_MISSING_CALLBACK',
  BAD_FINGERPRINT: 'ERR_OTR_BAD_FINGERPRINT',
  CLOSED: 'ERR_OTR_CLOSED',
  CHANNEL_EXISTS: 'ERR_OTR_CHANNEL_EXISTS',
  CONTACT_EXISTS: 'ERR_OTR_CONTACT_EXISTS',
  UNKNOWN_FINGERPRINT: 'ERR_OTR_UNKNOWN_FINGERPRINT',
  FINGERPRINT_IN_USE: 'ERR_OTR_FINGERPRINT_IN_USE',
  NOT_PRIVATE: 'ERR_OTR_NOT_PRIVATE',
  SYMKEY: 'ERR_OTR_SYMKEY',
  ENCRYPTION: 'ERR_OTR_ENCRYPTION',
  CALLBACK: 'ERR_OTR_CALLBACK',
  PRIVKEY_FILE: 'ERR_OTR_PRIVKEY_FILE',
  FINGERPRINTS_FILE: 'ERR_OTR_FINGERPRINTS_FILE',
  INSTAG_FILE: 'ERR_OTR_INSTAG_FILE',
  FILE_WRITE: 'ERR_OTR_FILE_WRITE',
  KEYGEN: 'ERR_OTR_KEYGEN',
  INIT: 'ERR_OTR_INIT',
  ADDON_LOAD: 'ERR_OTR_ADDON_LOAD',
  LOCKED: 'ERR_OTR_LOCKED',
  LOCK: 'ERR_OTR_LOCK',
  INTERNAL: 'ERR_OTR_INTERNAL',
} as const;

export type OtrErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class OtrError extends Error {
  readonly code: OtrErrorCode;

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
