// What a notification on a PostgresStore's trust channel may make a node do: re-read a
// contact's rows, which the payload names, and nothing else. Any role that can connect to the
// database can NOTIFY (PostgreSQL has no privilege for it), so a payload is never trusted: it
// says where to look, the table says what is true. Hints wait here coalesced (one re-read per
// contact however many hints name it) and bounded: past `maxHints` contacts they are dropped
// for one read of the whole table, so a flood of hints for random names costs bounded memory
// and one statement per round of reading, not one per hint.
import { requireName } from '../validate';

/** The key of a contact in a store's maps (names never hold U+0000). */
export const contactKey = (account: string, protocol: string, contact: string): string => `${account}\0${protocol}\0${contact}`;

/** A contact to re-read; `node` is who the payload says changed it (a label, never checked). */
export interface Hint {
  account: string;
  protocol: string;
  contact: string;
  node: string;
}

/** A rename a payload says another node made: both names are re-read, then the node may follow. */
export interface RenameHint {
  account: string;
  protocol: string;
  from: string;
  to: string;
  node: string;
}

// NOTIFY payloads are under 8,000 bytes; a longer string is not one of ours.
const MAX_PAYLOAD = 8000;
const MAX_NODE_BYTES = 63;

function nameOrUndefined(value: unknown): string | undefined {
  try {
    return requireName('name', value);
  } catch {
    return undefined;
  }
}

/** The hint a payload carries ({ n, a, p, c, w? }), or undefined when it is not well-formed. */
export function parseHint(payload: unknown): { hint: Hint; was?: string } | undefined {
  if (typeof payload !== 'string' || payload.length > MAX_PAYLOAD) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const { n, a, p, c, w } = value as Record<string, unknown>;
  const account = nameOrUndefined(a);
  const protocol = nameOrUndefined(p);
  const contact = nameOrUndefined(c);
  if (!account || !protocol || !contact) return undefined;
  const was = w === undefined ? undefined : nameOrUndefined(w);
  if (w !== undefined && (!was || was === contact)) return undefined;
  const node = typeof n === 'string' && Buffer.byteLength(n) <= MAX_NODE_BYTES ? n : '';
  return { hint: { account, protocol, contact, node }, was };
}

/** Hints waiting to be re-read, coalesced per contact and bounded. */
export class HintQueue {
  readonly #maxHints: number;
  readonly #maxRenames: number;
  #hints = new Map<string, Hint>();
  #renames = new Map<string, RenameHint>();
  #everything = false;

  constructor(maxHints: number, maxRenames: number) {
    this.#maxHints = maxHints;
    this.#maxRenames = maxRenames;
  }

  /** A contact to re-read (the latest hint's node is kept as its label). */
  add(hint: Hint): void {
    if (this.#everything) return;
    const key = contactKey(hint.account, hint.protocol, hint.contact);
    const waiting = this.#hints.get(key);
    if (waiting) {
      waiting.node = hint.node;
    } else if (this.#hints.size >= this.#maxHints) {
      this.everything();
    } else {
      this.#hints.set(key, { ...hint });
    }
  }

  /** A rename to check; its two names are re-read in any case. Past the bound, only re-read. */
  addRename(rename: RenameHint): void {
    const key = contactKey(rename.account, rename.protocol, rename.from);
    if (this.#renames.has(key) || this.#renames.size < this.#maxRenames) this.#renames.set(key, { ...rename });
    this.add({ account: rename.account, protocol: rename.protocol, contact: rename.from, node: rename.node });
    this.add({ account: rename.account, protocol: rename.protocol, contact: rename.to, node: rename.node });
  }

  /** Every contact is to be re-read: the single hints are dropped (the renames stay). */
  everything(): void {
    this.#everything = true;
    this.#hints.clear();
  }

  /** Whether anything waits. */
  get waiting(): boolean {
    return this.#everything || this.#renames.size > 0 || this.#hints.size > 0;
  }

  /** True (once) when the whole table is to be read; hints added from now on are for later changes. */
  takeEverything(): boolean {
    const everything = this.#everything;
    this.#everything = false;
    return everything;
  }

  /** The oldest rename waiting, taken out, with its two names' hints. */
  takeRename(): RenameHint | undefined {
    const first = this.#renames.entries().next();
    if (first.done) return undefined;
    const [key, rename] = first.value;
    this.#renames.delete(key);
    this.#hints.delete(contactKey(rename.account, rename.protocol, rename.from));
    this.#hints.delete(contactKey(rename.account, rename.protocol, rename.to));
    return rename;
  }

  /** Up to `count` contacts, oldest first, taken out (a hint added later waits again). */
  take(count: number): Hint[] {
    const taken: Hint[] = [];
    for (const [key, hint] of this.#hints) {
      if (taken.length >= count) break;
      this.#hints.delete(key);
      taken.push(hint);
    }
    return taken;
  }
}
