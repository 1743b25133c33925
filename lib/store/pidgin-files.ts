// The three Pidgin-format files as rows, and back: what a shared store imports, exports and
// materialises as a node's working copy. A private key stays the S-expression libotr wrote (one
// `(account …)` each), with its numbers all in #hex# (readPrivateKeyFile), so the same key
// reaches every node.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sweepTempFiles } from '../native';

export interface KeyRow {
  account: string;
  protocol: string;
  /** The account's `(account (name …) (protocol …) (private-key …))` S-expression. */
  privateKey: string;
}

export interface InstagRow {
  account: string;
  protocol: string;
  instag: number;
}

export interface FingerprintFileRow {
  account: string;
  protocol: string;
  contact: string;
  /** 40 lower-case hex digits. */
  fingerprint: string;
  trust: string;
}

// One token of an S-expression as libgcrypt prints it: a quoted string (C escapes), #hex#,
// |base64|, or a bare token.
// `encoding`: how `text` was decoded from the file's bytes ('latin1': one character a byte).
function readToken(text: string, at: number, encoding: 'utf8' | 'latin1' = 'utf8'): { value: string; bytes?: Buffer; end: number } {
  const c = text[at];
  if (c === '"') {
    const bytes: number[] = [];
    let i = at + 1;
    for (; i < text.length && text[i] !== '"'; i++) {
      if (text[i] !== '\\') {
        bytes.push(...Buffer.from(text[i], encoding));
        continue;
      }
      const e = text[++i];
      const simple: Record<string, number> = { n: 10, t: 9, r: 13, b: 8, f: 12, v: 11, '"': 34, "'": 39, '\\': 92 };
      if (e in simple) bytes.push(simple[e]);
      else if (e === 'x') {
        bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
        i += 2;
      } else if (/[0-7]/.test(e)) {
        bytes.push(parseInt(text.slice(i, i + 3), 8));
        i += 2;
      } else if (e === '\n') {
        // a continued line
      } else bytes.push(...Buffer.from(e, encoding));
    }
    const raw = Buffer.from(bytes);
    return { value: raw.toString('utf8'), bytes: raw, end: i + 1 };
  }
  if (c === '#') {
    const end = text.indexOf('#', at + 1);
    return { value: Buffer.from(text.slice(at + 1, end).replace(/\s/g, ''), 'hex').toString('utf8'), end: end + 1 };
  }
  if (c === '|') {
    const end = text.indexOf('|', at + 1);
    return { value: Buffer.from(text.slice(at + 1, end), 'base64').toString('utf8'), end: end + 1 };
  }
  const match = /^[^\s()"#|]+/.exec(text.slice(at));
  const token = match ? match[0] : '';
  return { value: token, end: at + token.length };
}

// Where the list opened at `open` closes (strings and #hex# skipped).
function closing(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === '#' || c === '|') {
      i = readToken(text, i).end - 1;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  throw new Error('unbalanced parentheses');
}

// The value of `(field value)` directly inside the account expression.
function field(block: string, name: string): string {
  const re = new RegExp(`\\(\\s*${name}\\s+`, 'g');
  const m = re.exec(block);
  if (!m) throw new Error(`no (${name} …) in an account`);
  return readToken(block, m.index + m[0].length).value;
}

/**
 * The accounts of a private key file, read as bytes. libgcrypt prints a number whose bytes all
 * look printable (about one key in 170 has its private `x` so) as a quoted string of raw bytes,
 * or as a bare token, instead of #hex#: read as UTF-8 text, its bytes above 0x7f would become
 * U+FFFD and the key would sign nothing its public half verifies. Every such number inside
 * `(private-key …)` is rewritten as #hex# (the same number to libotr), so a row's text is ASCII
 * apart from the names, which libotr wrote in UTF-8.
 */
export function readPrivateKeyFile(file: string): KeyRow[] {
  const bytes = fs.readFileSync(file);
  try {
    return parsePrivateKeys(Buffer.from(hexNumbers(bytes.toString('latin1')), 'latin1').toString('utf8'));
  } finally {
    bytes.fill(0); // the key's bytes; the strings made of them cannot be wiped
  }
}

// `text`: a key file decoded as latin1. Each `(name value)` list inside `(private-key …)` whose
// value is a quoted string or a bare token gets it as #hex#.
function hexNumbers(text: string): string {
  let out = '';
  let copied = 0;
  let keyEnd = -1; // where the `(private-key …)` being read closes
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === '#' || c === '|') {
      i = readToken(text, i, 'latin1').end - 1;
    } else if (c === '(' && i > keyEnd && /^\(\s*private-key\b/.test(text.slice(i, i + 40))) {
      keyEnd = closing(text, i);
    } else if (c === '(' && i < keyEnd) {
      const value = /^\(\s*[^\s()"#|]+\s+(?=[^\s()#|])/.exec(text.slice(i, i + 200));
      if (!value) continue;
      const at = i + value[0].length;
      const token = readToken(text, at, 'latin1');
      const bytes = token.bytes ?? Buffer.from(token.value, 'latin1');
      out += `${text.slice(copied, at)}#${bytes.toString('hex').toUpperCase()}#`;
      copied = token.end;
      i = token.end - 1;
    }
  }
  return out + text.slice(copied);
}

/**
 * Whether a stored key's numbers lost bytes: rows an earlier version stored read the key file as
 * UTF-8 text, and a number libgcrypt had printed as raw bytes came out with U+FFFD in place of
 * each byte above 0x7f. Such a key signs nothing its public half verifies. Only the
 * `(private-key …)` part is looked at: the names may hold any character.
 */
export function lostKeyBytes(privateKey: string): boolean {
  const at = privateKey.search(/\(\s*private-key\b/);
  return at >= 0 && privateKey.includes('\ufffd', at);
}

/** Every `(account …)` of a private key file's text; throws on a file libotr could not read either. */
export function parsePrivateKeys(text: string): KeyRow[] {
  const start = text.indexOf('(privkeys');
  if (start < 0) return [];
  const end = closing(text, start);
  const rows: KeyRow[] = [];
  for (let i = start + 1; i < end; i++) {
    const c = text[i];
    if (c === '"' || c === '#' || c === '|') {
      i = readToken(text, i).end - 1;
      continue;
    }
    if (c !== '(') continue;
    const close = closing(text, i);
    const block = text.slice(i, close + 1);
    if (/^\(\s*account\b/.test(block)) {
      rows.push({ account: field(block, 'name'), protocol: field(block, 'protocol'), privateKey: block });
    }
    i = close;
  }
  return rows;
}

export function serialisePrivateKeys(rows: KeyRow[]): string {
  return `(privkeys\n${rows.map((r) => ` ${r.privateKey}\n`).join('')})\n`;
}

export function parseInstanceTags(text: string): InstagRow[] {
  const rows: InstagRow[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const fields = line.split('\t');
    if (fields.length < 3 || !/^[0-9a-fA-F]{1,8}$/.test(fields[2].trim())) continue;
    rows.push({ account: fields[0], protocol: fields[1], instag: parseInt(fields[2].trim(), 16) });
  }
  return rows;
}

export function serialiseInstanceTags(rows: InstagRow[]): string {
  return rows.map((r) => `${r.account}\t${r.protocol}\t${r.instag.toString(16).padStart(8, '0')}\n`).join('');
}

/** The well-formed lines of a fingerprints file (username, account, protocol, fingerprint[, trust]). */
export function parseFingerprints(text: string): FingerprintFileRow[] {
  const rows: FingerprintFileRow[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split('\t');
    if (fields.length < 4 || fields.length > 5 || !/^[0-9a-fA-F]{40}$/.test(fields[3])) continue;
    if (fields.slice(0, 3).some((f) => f.length === 0)) continue;
    rows.push({ contact: fields[0], account: fields[1], protocol: fields[2], fingerprint: fields[3].toLowerCase(), trust: fields[4] ?? '' });
  }
  return rows;
}

export function serialiseFingerprints(rows: FingerprintFileRow[]): string {
  return rows.map((r) => `${r.contact}\t${r.account}\t${r.protocol}\t${r.fingerprint}\t${r.trust}\n`).join('');
}

/**
 * Temp file (mode 0600), fsync, rename, fsync of the directory. The temp file is named as the
 * native writer names its own (`<file>.tmp-` and 12 hex digits, src-native/io/files.h), and those
 * a killed write left beside `file` (a copy of a private key, perhaps) are wiped and removed
 * first. That sweep is safe because every caller is the only writer of `file`: the CLI's
 * `import` holds the file set's lock, `PostgresStore.exportFiles` too, and a store's node
 * writes into its own work directory before its engine opens the files there.
 */
export function writeFileAtomically(file: string, content: string | Buffer): void {
  sweepTempFiles(file);
  const temp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  const fd = fs.openSync(temp, 'wx', 0o600);
  try {
    if (typeof content === 'string') fs.writeSync(fd, content);
    else fs.writeSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
  const dir = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
}

/** Overwrites a file that held a private key before removing it. */
export function wipeFile(file: string): void {
  try {
    const size = fs.statSync(file).size;
    fs.writeFileSync(file, Buffer.alloc(size));
  } catch {
    // gone already
  }
  fs.rmSync(file, { force: true });
}
