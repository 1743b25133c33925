// What a PostgresStore node knows of the fingerprints table against what its engine shows:
// the engine's fingerprints per contact (its changes are diffed against them), the changes of
// other nodes on their way into the engine (not to be written back), the renames of other
// nodes being followed, and this node's own writes on their way to the table.
import type { FingerprintFileRow } from './pidgin-files';
import { contactKey } from './trust-hints';

export class Mirror {
  /** What the engine has for each contact (contact key → hex → trust). */
  readonly rows = new Map<string, Map<string, string>>();
  /**
   * Renames of another node this node is following (`${fromKey}\0${to}`), and the contacts
   * whose engine changes meanwhile are the table's, not this node's: not written back.
   */
  readonly following = new Set<string>();
  readonly quiet = new Set<string>();
  // What a remote change being applied will make the engine show (null: forgotten): not a local change.
  readonly #expect = new Map<string, string | null>();
  readonly #pending = new Set<Promise<void>>();
  // Contacts with a write of this node on its way (how many): the table does not show it yet.
  readonly #localWrites = new Map<string, number>();

  /** The rows the engine was loaded with. */
  load(rows: FingerprintFileRow[]): void {
    for (const row of rows) {
      const key = contactKey(row.account, row.protocol, row.contact);
      const known = this.rows.get(key) ?? new Map<string, string>();
      known.set(row.fingerprint, row.trust);
      this.rows.set(key, known);
    }
  }

  /** A remote change is about to make the engine show `value` for the fingerprint (null: gone). */
  expect(key: string, hex: string, value: string | null): void {
    this.#expect.set(`${key}\0${hex}`, value);
  }

  /** The engine refused that change. */
  unexpect(key: string, hex: string): void {
    this.#expect.delete(`${key}\0${hex}`);
  }

  // True when the engine now shows what a remote change being applied was to make it show.
  consume(key: string, hex: string, value: string | null): boolean {
    const id = `${key}\0${hex}`;
    if (!this.#expect.has(id)) return false;
    const expected = this.#expect.get(id)!;
    this.#expect.delete(id);
    return expected === null ? value === null : value !== null && (expected !== '') === (value !== '');
  }

  // A write on its way, for these contacts (re-reads of them wait until it is stored).
  track(done: Promise<void>, keys: string[]): void {
    this.#pending.add(done);
    for (const key of keys) this.#localWrites.set(key, (this.#localWrites.get(key) ?? 0) + 1);
    const drop = () => {
      this.#pending.delete(done);
      for (const key of keys) {
        const left = (this.#localWrites.get(key) ?? 1) - 1;
        if (left > 0) this.#localWrites.set(key, left);
        else this.#localWrites.delete(key);
      }
    };
    done.then(drop, drop);
  }

  /** Whether a write of this node for the contact is on its way. */
  writing(key: string): boolean {
    return this.#localWrites.has(key);
  }

  /** Settles when every write on its way now is done (whether stored or not). */
  async written(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  /** Settles when every write on its way now is stored; rejects with the first that failed. */
  async settled(): Promise<void> {
    const results = await Promise.allSettled([...this.#pending]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
