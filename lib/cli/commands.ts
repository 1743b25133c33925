// keys list|fingerprint|generate and trust list|verify|distrust|forget over a file set.
import type { Account } from '../account';
import type { Fingerprint } from '../fingerprint';
import type { OTR } from '../otr';
import type { TrustChange as StoreTrustChange } from '../store/store';
import { fingerprintToHex, hexToHuman } from '../validate';
import { notFound, usageError } from './errors';
import { type FileSet, type WithSkipped, withFiles, withSnapshot } from './fileset';

export interface KeyRow {
  account: string;
  protocol: string;
  fingerprint: string;
  instanceTag: number;
}

// One fingerprint as the CLI prints it: the same fields as a store's trust change.
export type TrustRow = Pick<StoreTrustChange, 'account' | 'protocol' | 'contact' | 'fingerprint' | 'trust' | 'verified'>;

const keyRow = (a: Account): KeyRow => ({ account: a.name, protocol: a.protocol, fingerprint: a.fingerprint, instanceTag: a.instanceTag });

export function keysList(files: FileSet): Promise<WithSkipped<KeyRow[]>> {
  return withSnapshot(files, (otr) => otr.accounts().map(keyRow));
}

export function keysFingerprint(files: FileSet, name: string, protocol: string): Promise<WithSkipped<KeyRow>> {
  return withSnapshot(files, (otr) => keyRow(findAccount(otr, name, protocol, files)));
}

/** Generates the account's key if it has none; `created` says whether one was made. */
export function keysGenerate(files: FileSet, force: boolean, name: string, protocol: string): Promise<WithSkipped<KeyRow & { created: boolean }>> {
  return withFiles(files, force, async (otr) => {
    const existed = otr.findAccount(name, protocol) !== undefined;
    const account = await otr.account(name, protocol);
    return { ...keyRow(account), created: !existed };
  });
}

export function trustList(files: FileSet, filter: { account?: string; protocol?: string }): Promise<WithSkipped<TrustRow[]>> {
  return withSnapshot(files, (otr) => {
    const rows: TrustRow[] = [];
    for (const account of otr.accounts()) {
      if (filter.account !== undefined && account.name !== filter.account) continue;
      if (filter.protocol !== undefined && account.protocol !== filter.protocol) continue;
      for (const contact of account.contacts()) {
        for (const fp of contact.fingerprints()) {
          rows.push({
            account: account.name,
            protocol: account.protocol,
            contact: contact.name,
            fingerprint: fp.hash,
            trust: fp.trust,
            verified: fp.isVerified,
          });
        }
      }
    }
    return rows;
  });
}

export type TrustChange = 'verify' | 'distrust' | 'forget';

export interface TrustTarget {
  account: string;
  protocol: string;
  contact: string;
  fingerprint: string;
}

/** verify adds the fingerprint if it is new; distrust and forget need it to be known. */
export function trustChange(
  files: FileSet,
  force: boolean,
  change: TrustChange,
  target: TrustTarget,
): Promise<WithSkipped<TrustRow | { forgotten: TrustTarget }>> {
  const hash = humanFingerprint(target.fingerprint);
  return withFiles(files, force, async (otr) => {
    const account = findAccount(otr, target.account, target.protocol, files);
    if (change === 'verify') {
      const contact = await account.contact(target.contact, hash, true);
      return rowOf(
        account,
        contact.fingerprints().find((f) => f.hash === hash)!,
      );
    }
    const fp = account
      .findContact(target.contact)
      ?.fingerprints()
      .find((f) => f.hash === hash);
    if (!fp) {
      throw notFound(`${target.contact} has no fingerprint ${hash} for ${target.account} (${target.protocol}) in ${files.contactsFile}`);
    }
    if (change === 'distrust') {
      await fp.setVerified(false);
      return rowOf(account, fp);
    }
    await fp.forget();
    return { forgotten: { ...target, fingerprint: hash } };
  });
}

function rowOf(account: Account, fp: Fingerprint): TrustRow {
  return { account: account.name, protocol: account.protocol, contact: fp.contact.name, fingerprint: fp.hash, trust: fp.trust, verified: fp.isVerified };
}

function findAccount(otr: OTR, name: string, protocol: string, files: FileSet): Account {
  const account = otr.findAccount(name, protocol);
  if (!account) {
    throw notFound(`no key for ${name} (${protocol}) in ${files.privkeysFile}; make one with: protocol-otr keys generate ${name} ${protocol}`);
  }
  return account;
}

function humanFingerprint(text: string): string {
  try {
    return hexToHuman(fingerprintToHex(text.replace(/\s+/g, '')));
  } catch {
    throw usageError(`not a fingerprint: '${text}' (40 hex digits, spaces allowed)`);
  }
}
