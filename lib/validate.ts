// Argument checks shared by the public classes: every bad input becomes an OtrError with a
// stable code before anything reaches the addon.
import { ErrorCodes, OtrError } from './errors';

export function invalid(message: string): OtrError {
  return new OtrError(ErrorCodes.INVALID_ARGUMENT, message);
}

// libotr takes C strings: a NUL would silently cut the text short.
export function requireText(name: string, value: unknown, { allowEmpty = false } = {}): string {
  if (typeof value !== 'string') throw invalid(`${name} must be a string, got ${describe(value)}`);
  if (!allowEmpty && value.length === 0) throw invalid(`${name} must not be empty`);
  if (value.includes('\0')) throw invalid(`${name} must not contain NUL characters`);
  return value;
}

// Account, protocol and contact names end up as tab-separated fields of libotr's files, which
// libotr writes unescaped and reads back a line of at most 1,000 bytes at a time: a tab or a
// newline in a name would plant lines (trust) of the remote user's choosing, and a long name
// would make the file unreadable. Checked again by the addon.
export const MAX_NAME_BYTES = 255;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

// With the u flag a surrogate pair is one code point: only a lone surrogate matches.
const LONE_SURROGATE = /\p{Surrogate}/u;

export function requireName(name: string, value: unknown): string {
  requireText(name, value);
  const text = value as string;
  // UTF-8 has no form for a lone surrogate: it would reach libotr as U+FFFD, the same bytes as
  // another name (whose trust it would share).
  const lone = LONE_SURROGATE.exec(text);
  if (lone) {
    const code = lone[0].charCodeAt(0).toString(16).toUpperCase();
    throw invalid(`${name} must be well-formed Unicode (a lone surrogate U+${code} at ${lone.index}): ${describe(text)}`);
  }
  const control = CONTROL.exec(text);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).padStart(2, '0');
    throw invalid(`${name} must not contain control characters (U+00${code.toUpperCase()} at ${control.index}): ${describe(text)}`);
  }
  const bytes = text.length > MAX_NAME_BYTES ? MAX_NAME_BYTES + 1 : Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_NAME_BYTES) throw invalid(`${name} must be at most ${MAX_NAME_BYTES} bytes of UTF-8: ${describe(text)}`);
  return text;
}

export function requireInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

export function requireBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalid(`${name} must be a boolean, got ${describe(value)}`);
  return value;
}

const HEX40 = /^[0-9a-fA-F]{40}$/;
const HUMAN = /^[0-9a-fA-F]{8}( [0-9a-fA-F]{8}){4}$/;

// Accepts 40 hex digits or libotr's 44-character human form; returns 40 lower-case hex digits.
export function fingerprintToHex(value: unknown): string {
  if (typeof value === 'string' && (HEX40.test(value) || HUMAN.test(value))) {
    return value.replace(/ /g, '').toLowerCase();
  }
  throw new OtrError(
    ErrorCodes.BAD_FINGERPRINT,
    `not a fingerprint: ${describe(value)} (expected 40 hex digits or the form 12345678 90ABCDEF 12345678 90ABCDEF 12345678)`,
  );
}

export function hexToHuman(hex: string): string {
  return hex.toUpperCase().match(/.{8}/g)!.join(' ');
}

/** A value as an error message shows it: the value itself for numbers and short strings, its kind for objects. */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return `${value}n`;
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'symbol':
      return value.toString();
    case 'function':
      return 'a function';
    default:
      if (value === null) return 'null';
      return Array.isArray(value) ? 'an array' : 'an object';
  }
}

/**
 * Refuses option names that `known` does not list: a misspelt option would otherwise be
 * ignored without a word (and its default used). The message names the closest valid name.
 */
export function rejectUnknownOptions(what: string, options: object, known: readonly string[]): void {
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const shown = name.length > 60 ? `${name.slice(0, 60)}…` : name;
    const { match, distance } = closest(name.slice(0, 100), known);
    // A far match is still named, with the whole list beside it (the caller may mean another).
    const far = distance > Math.max(2, Math.floor(name.length / 3));
    throw invalid(`${what} has no option '${shown}': did you mean '${match}'?${far ? ` (its options: ${known.join(', ')})` : ''}`);
  }
}

// The candidate fewest edits away (case ignored; an adjacent swap is one edit), first listed on a tie.
function closest(name: string, candidates: readonly string[]): { match: string; distance: number } {
  let best = { match: candidates[0], distance: Infinity };
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < best.distance) best = { match: candidate, distance };
  }
  return best;
}

// Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps.
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2][j - 2] + 1);
      rows[i][j] = d;
    }
  }
  return rows[a.length][b.length];
}
