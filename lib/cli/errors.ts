// Exit codes of the operator CLI (documented in docs/CLI.md) and the error that carries one.

export const Exit = {
  OK: 0,
  /** A file cannot be used or written, or libotr failed. */
  FAILURE: 1,
  /** The command line is wrong. */
  USAGE: 2,
  /** A write was refused: another process (a bridge) holds the files' lock. */
  LOCKED: 3,
  /** The account, contact or fingerprint named does not exist. */
  NOT_FOUND: 4,
} as const;

export type ExitCode = (typeof Exit)[keyof typeof Exit];

export class CliError extends Error {
  readonly exitCode: ExitCode;

  constructor(exitCode: ExitCode, message: string) {
    super(message);
    this.exitCode = exitCode;
  }
}
