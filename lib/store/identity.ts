// One identity for every node: the accounts' keys, each made once (by the first node that
// opens without it) and stored; and the node's working copy of the three files the engine
// loads, written from the database at open in a private directory of the node.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, OtrError } from '../errors';
import type { PgClient } from './pg';
import {
  lostKeyBytes,
  parseInstanceTags,
  readPrivateKeyFile,
  serialiseFingerprints,
  serialiseInstanceTags,
  serialisePrivateKeys,
  writeFileAtomically,
  type FingerprintFileRow,
  type KeyRow,
} from './pidgin-files';
import type { Schema } from './schema';
import type { StoreFiles, StoreOpening } from './store';
import { type WorkDir, makeWorkDir, sweepDeadWorkDirs } from './work-dir';

const NODE_DIR_PREFIX = 'protocol-otr-node-';
const KEYGEN_DIR_PREFIX = 'protocol-otr-keygen-';

/** A key this node generated at open; `stored: false`: another node stored its key first. */
export interface KeyGenerated {
  account: string;
  protocol: string;
  stored: boolean;
}

/** The store's tables, the node's name and the parent of its working directories. */
export interface IdentityOptions {
  schema: Schema;
  node: string;
  /** The parent of the node's working directories. */
  workParent: string;
}

/** Makes the key of each account the table does not have yet, reported in `generated`. */
export async function storeMissingKeys(
  db: PgClient,
  options: IdentityOptions,
  accounts: { name: string; protocol: string }[],
  opening: StoreOpening,
  generated: KeyGenerated[],
): Promise<void> {
  const { rows: have } = await db.query(`SELECT account, protocol FROM ${options.schema.table('accounts')}`);
  const missing = accounts.filter((a) => !have.some((r) => r.account === a.name && r.protocol === a.protocol));
  await Promise.all(missing.map((a) => generateAndStore(db, options, opening, a.name, a.protocol, generated)));
}

// Generates a key and instance tag in a scratch OTR instance, then stores them unless
// another node stored its own first (then that one is what every node uses).
async function generateAndStore(
  db: PgClient,
  options: IdentityOptions,
  opening: StoreOpening,
  account: string,
  protocol: string,
  generated: KeyGenerated[],
): Promise<void> {
  const scratch = makeWorkDir(options.workParent, KEYGEN_DIR_PREFIX);
  const files = {
    privkeysFile: path.join(scratch.path, 'otr.private_key'),
    contactsFile: path.join(scratch.path, 'otr.fingerprints'),
    instanceTagsFile: path.join(scratch.path, 'otr.instance_tags'),
  };
  let key: KeyRow | undefined;
  let instag: number | undefined;
  try {
    await opening.makeKey(files, account, protocol);
    key = readPrivateKeyFile(files.privkeysFile)[0];
    instag = parseInstanceTags(fs.readFileSync(files.instanceTagsFile, 'utf8'))[0]?.instag;
  } finally {
    scratch.remove();
  }
  if (!key || instag === undefined) throw new OtrError(ErrorCodes.KEYGEN, `no key was generated for ${account} (${protocol})`);
  const { rowCount } = await db.query(
    `INSERT INTO ${options.schema.table('accounts')} (account, protocol, private_key, instance_tag, created_by)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
    [account, protocol, key.privateKey, instag, options.node],
  );
  generated.push({ account, protocol, stored: rowCount === 1 });
}

/** The node's working copy: its files, its directory (removed at close) and the fingerprint rows written. */
export interface WorkingCopy {
  files: StoreFiles;
  dir: WorkDir;
  fingerprints: FingerprintFileRow[];
}

/** Writes the database's accounts and fingerprints as the files the engine loads. */
export async function writeWorkingCopy(db: PgClient, options: IdentityOptions): Promise<WorkingCopy> {
  const { schema, workParent } = options;
  const { rows: accounts } = await db.query(`SELECT account, protocol, private_key, instance_tag FROM ${schema.table('accounts')} ORDER BY account, protocol`);
  const { rows: fingerprints } = await db.query(
    `SELECT account, protocol, contact, fingerprint, trust FROM ${schema.table('fingerprints')} ORDER BY account, protocol, contact, changed_at`,
  );
  const fpRows = fingerprints as unknown as FingerprintFileRow[];
  const damaged = accounts.find((row) => lostKeyBytes(String(row.private_key)));
  if (damaged) {
    throw new OtrError(
      ErrorCodes.STORE,
      `the stored private key of ${String(damaged.account)} (${String(damaged.protocol)}) is damaged: an earlier version stored it from a key file read as UTF-8 text, ` +
        `and its private number lost bytes (U+FFFD in its (private-key …)), so every AKE of the account would fail at the peer with "Bad signature". ` +
        `Delete its row from ${schema.table('accounts')} and import the original key file again (protocol-otr database import), ` +
        'or delete the row and open a node to generate a new key (its contacts then see a new fingerprint)',
    );
  }
  // Working copies of nodes that died here without removing them (kill -9, OOM) go first:
  // each holds a copy of the private key.
  for (const prefix of [NODE_DIR_PREFIX, KEYGEN_DIR_PREFIX]) sweepDeadWorkDirs(workParent, prefix);
  const dir = makeWorkDir(workParent, NODE_DIR_PREFIX);
  const files: StoreFiles = {
    privkeysFile: path.join(dir.path, 'otr.private_key'),
    contactsFile: path.join(dir.path, 'otr.fingerprints'),
    instanceTagsFile: path.join(dir.path, 'otr.instance_tags'),
  };
  try {
    writeFileAtomically(
      files.privkeysFile,
      serialisePrivateKeys(accounts.map((r) => ({ account: String(r.account), protocol: String(r.protocol), privateKey: String(r.private_key) }))),
    );
    writeFileAtomically(
      files.instanceTagsFile,
      serialiseInstanceTags(accounts.map((r) => ({ account: String(r.account), protocol: String(r.protocol), instag: Number(r.instance_tag) }))),
    );
    writeFileAtomically(files.contactsFile, serialiseFingerprints(fpRows));
  } catch (error) {
    dir.remove();
    throw error;
  }
  return { files, dir, fingerprints: fpRows };
}
