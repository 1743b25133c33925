// Status words of the contract, indexed by the numbers the addon reports (effects.h).
export type Status = 'Unused' | 'Not private' | 'Unverified' | 'Private' | 'Finished';

const WORDS: readonly Status[] = ['Unused', 'Not private', 'Unverified', 'Private', 'Finished'];

export function statusWord(code: number): Status {
  return WORDS[code] ?? 'Unused';
}
