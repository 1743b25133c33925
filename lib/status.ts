// Status words of the contract, indexed by the numbers the addon reports (effects.h).
/**
 * A channel's or fingerprint's state: `'Unused'` (no session), `'Not private'` (plaintext),
 * `'Unverified'` (encrypted, fingerprint not trusted), `'Private'` (encrypted and trusted),
 * `'Finished'` (the contact ended the encrypted session).
 */
export type Status = 'Unused' | 'Not private' | 'Unverified' | 'Private' | 'Finished';

const WORDS: readonly Status[] = ['Unused', 'Not private', 'Unverified', 'Private', 'Finished'];

export function statusWord(code: number): Status {
  return WORDS[code] ?? 'Unused';
}
