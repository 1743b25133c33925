// A Pidgin-format file set into the database and back: what `protocol-otr database import`
// and `export` run (see PostgresStore.importFiles and exportFiles).
import { randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes } from '../errors';
import { FileSetLock } from '../lock';
import type { PgClient } from './pg';
import {
  parseFingerprints,
  parseInstanceTags,
  readPrivateKeyFile,
  serialiseFingerprints,
  serialiseInstanceTags,
  serialisePrivateKeys,
  writeFileAtomically,
  type FingerprintFileRow,
} from './pidgin-files';
import type { Schema } from './schema';
import type { StoreFiles } from './store';

/** Copies the files' accounts and fingerprints into the tables (see PostgresStore.importFiles). */
export async function importFiles(db: PgClient, schema: Schema, node: string, files: Partial<StoreFiles>) {
  const present = (file: string | undefined): file is string => file !== undefined && file !== '' && fs.existsSync(file);
  const read = (file: string | undefined) => (present(file) ? fs.readFileSync(file, 'utf8') : '');
  const keys = present(files.privkeysFile) ? readPrivateKeyFile(files.privkeysFile) : [];
  const instags = parseInstanceTags(read(files.instanceTagsFile));
  const fingerprints = parseFingerprints(read(files.contactsFile));
  let accounts = 0;
  for (const key of keys) {
    const instag = instags.find((t) => t.account === key.account && t.protocol === key.protocol)?.instag ?? randomInt(0x100, 0xffffffff);
    const { rowCount } = await db.query(
      `INSERT INTO ${schema.table('accounts')} (account, protocol, private_key, instance_tag, created_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
      [key.account, key.protocol, key.privateKey, instag, node],
    );
    accounts += rowCount ?? 0;
  }
  let added = 0;
  const fp = schema.table('fingerprints');
  for (const row of fingerprints) {
    const { rows } = await db.query(
      `WITH row AS (INSERT INTO ${fp} AS f (account, protocol, contact, fingerprint, trust, changed_by) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (account, protocol, contact, fingerprint) DO UPDATE SET trust = EXCLUDED.trust, changed_by = EXCLUDED.changed_by, changed_at = now()
         WHERE EXCLUDED.trust <> '' AND f.trust IS DISTINCT FROM EXCLUDED.trust RETURNING *, (xmax = 0) AS inserted)
       SELECT inserted, pg_notify($7, json_build_object('n', $6::text, 'a', account, 'p', protocol, 'c', contact)::text) FROM row`,
      [row.account, row.protocol, row.contact, row.fingerprint, row.trust, node, schema.channel],
    );
    if (rows[0]?.inserted === true) added++;
  }
  return { accounts, accountsKept: keys.length - accounts, fingerprints: added };
}

/** Writes the tables as a file set, holding its lock (see PostgresStore.exportFiles). */
export async function exportFiles(writer: () => Promise<PgClient>, schema: Schema, files: StoreFiles) {
  const lock = FileSetLock.acquire([
    { file: files.privkeysFile, code: ErrorCodes.PRIVKEY_FILE },
    { file: files.contactsFile, code: ErrorCodes.FINGERPRINTS_FILE },
    { file: files.instanceTagsFile, code: ErrorCodes.INSTAG_FILE },
  ]);
  try {
    const db = await writer();
    const { rows: accounts } = await db.query(
      `SELECT account, protocol, private_key, instance_tag FROM ${schema.table('accounts')} ORDER BY account, protocol`,
    );
    const { rows: fingerprints } = await db.query(
      `SELECT account, protocol, contact, fingerprint, trust FROM ${schema.table('fingerprints')} ORDER BY account, protocol, contact, changed_at`,
    );
    writeFileAtomically(
      path.resolve(files.privkeysFile),
      serialisePrivateKeys(accounts.map((r) => ({ account: String(r.account), protocol: String(r.protocol), privateKey: String(r.private_key) }))),
    );
    writeFileAtomically(
      path.resolve(files.instanceTagsFile),
      serialiseInstanceTags(accounts.map((r) => ({ account: String(r.account), protocol: String(r.protocol), instag: Number(r.instance_tag) }))),
    );
    writeFileAtomically(path.resolve(files.contactsFile), serialiseFingerprints(fingerprints as unknown as FingerprintFileRow[]));
    return { accounts: accounts.length, fingerprints: fingerprints.length };
  } finally {
    lock.release();
  }
}
