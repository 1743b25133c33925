// Exit codes of the operator CLI (documented in docs/CLI.md), one meaning each, and the error
// that carries one with its stable code and the lines skipped before it.
import { ErrorCodes, OtrError, type OtrErrorCode } from '../errors';

export const Exit = {
  OK: 0,
  /** A file, the database or libotr failed: the error's `code` says which (ERR_OTR_*). */
  FAILURE: 1,
  /** The command line is wrong, a `--dir` that is not a directory included. */
  USAGE: 2,
  /** A write was refused: another process (a bridge) holds the files' lock. */
  LOCKED: 3,
  /** The account, contact, fingerprint or import source named does not exist. */
  NOT_FOUND: 4,
  /** An import was refused: the target already has OTR files. */
  TARGET_EXISTS: 5,
  /** Lines of a file could not be read and were skipped (without --force). */
  SKIPPED: 6,
} as const;

export type ExitCode = (typeof Exit)[keyof typeof Exit];

/** A line of a file that could not be read, and was left out. */
export interface SkippedLine {
  /** The file, as the command was given it. */
  file: string;
  /** Its line number (from 1). */
  line: number;
  /** Why it was skipped. */
  reason: string;
  /** Where the file as it was is kept, when the command rewrote it without the line. */
  originalKeptAs?: string;
}

/** The `code` of the CLI's own errors (the others carry the library's ERR_OTR_* code). */
export const CliCodes = {
  USAGE: 'ERR_OTR_CLI_USAGE',
  NOT_FOUND: 'ERR_OTR_CLI_NOT_FOUND',
  TARGET_EXISTS: 'ERR_OTR_CLI_TARGET_EXISTS',
  SKIPPED: 'ERR_OTR_CLI_SKIPPED',
} as const;

export type CliErrorCode = OtrErrorCode | (typeof CliCodes)[keyof typeof CliCodes];

export class CliError extends Error {
  readonly exitCode: ExitCode;
  readonly code: CliErrorCode;
  /** Lines skipped before the command stopped, reported with the error. */
  readonly skipped: SkippedLine[];

  constructor(exitCode: ExitCode, code: CliErrorCode, message: string, options: { cause?: unknown; skipped?: SkippedLine[] } = {}) {
    super(message, { cause: options.cause });
    this.exitCode = exitCode;
    this.code = code;
    this.skipped = options.skipped ?? [];
  }
}

export const usageError = (message: string) => new CliError(Exit.USAGE, CliCodes.USAGE, message);
export const notFound = (message: string) => new CliError(Exit.NOT_FOUND, CliCodes.NOT_FOUND, message);

/** Any error as the CLI reports it: its exit code and its code. */
export function asCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof OtrError) {
    return new CliError(error.code === ErrorCodes.LOCKED ? Exit.LOCKED : Exit.FAILURE, error.code, error.message, { cause: error });
  }
  // Not one of ours: a bug, reported with the library's code for one.
  return new CliError(Exit.FAILURE, ErrorCodes.INTERNAL, error instanceof Error ? error.message : String(error), { cause: error });
}
