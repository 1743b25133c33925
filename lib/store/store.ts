// Where an OTR instance keeps its identity (private keys, instance tags) and what it knows of
// its contacts' keys (fingerprints and trust). The engine always works on the three
// Pidgin-format files; a Store decides where they come from and where changes go.
//
//   - FileStore (the default, what `new OTR(options)` does): the files are the store.
//   - PostgresStore (postgres-store.ts): the database is the store, shared by several nodes;
//     the files are a private working copy of one node, made at open.
import type { NativeContact, NativeHandle } from '../native';
import { describe, invalid, rejectUnknownOptions, requireText } from '../validate';
import type { Lease } from './leases';

/** The three files the engine loads. */
export interface StoreFiles {
  /** Our DSA keys, one per account. */
  privkeysFile: string;
  /** Contacts' fingerprints and our trust in them. */
  contactsFile: string;
  /** Our instance tags, one per account. */
  instanceTagsFile: string;
}

/** What the 'trustChanged' event of an OTR with a shared store carries. */
export interface TrustChange {
  /** Our account's name. */
  account: string;
  /** Our account's protocol. */
  protocol: string;
  /** The contact whose fingerprint it is. */
  contact: string;
  /** Human form: `12345678 90ABCDEF 12345678 90ABCDEF 12345678`. */
  fingerprint: string;
  /** libotr's trust word ('' = not verified). */
  trust: string;
  /** `trust !== ''`. */
  verified: boolean;
  /** True when the fingerprint was forgotten. */
  forgotten: boolean;
  /** 'local': made here and now stored; 'remote': made by `node` and now applied here. */
  origin: 'local' | 'remote';
  /**
   * The node that made the change: for a remote one, the `changed_by` of the row read back; for
   * a fingerprint forgotten remotely (its row is gone), the node the notification named.
   */
  node: string;
}

/** @internal What a store may ask of the library while it opens. */
export interface StoreOpening {
  /** Makes the account's key and instance tag in these files, as an OTR instance over them does. */
  makeKey(files: StoreFiles, account: string, protocol: string): Promise<void>;
}

/**
 * @internal What a store asks of the OTR instance it serves, by names: a store sees no Account,
 * Contact or Channel (the instance's internals implement it).
 */
export interface StoreHost {
  /** Whether otr.close() was called. */
  readonly closed: boolean;
  /** An error no caller waits for ('error' on the instance). */
  report(error: unknown): void;
  /** 'trustChanged' on the instance. */
  trustChanged(change: TrustChange): void;
  /** A lease event on the instance ('leasesRestored' carries no reason). */
  leaseEvent(event: 'leasesLost' | 'leasesSuspended' | 'leasesRestored', leases: Lease[], why: string): void;
  /** Whether the instance has the account (its key). */
  hasAccount(account: string, protocol: string): boolean;
  /** Whether the instance shows a contact under the name, with no channel. */
  hasIdleContact(account: string, protocol: string, name: string): boolean;
  /** Renames the contact as contact.rename() does. */
  renameContact(account: string, protocol: string, from: string, to: string): Promise<void>;
  /** Closes the contact's channel, if it has one (its sessions end here). */
  closeChannel(account: string, protocol: string, name: string): Promise<void>;
  /** Shows the engine's contact of that name as a Contact (after call() changed it). */
  showContact(account: string, protocol: string, name: string): void;
  /** One engine job, queued at once (the public calls would wait for the store's own writes). */
  call(submit: (job: number, handle: NativeHandle) => void): Promise<unknown>;
}

/**
 * Where an OTR instance's identity and trust are kept; given to {@link OTR.open}. The
 * implementations are {@link FileStore} and {@link PostgresStore}.
 */
export abstract class Store {
  /** 'files' or 'postgres'. */
  abstract readonly kind: string;

  /** @internal Makes the files the engine loads; called once, by OTR.open(). */
  abstract _open(opening: StoreOpening): Promise<StoreFiles>;
  /** @internal The OTR instance made over those files. */
  _attach(_host: StoreHost): void {}
  /** @internal A contact's state as the engine now has it (fingerprints and trust). */
  _contactState(_state: NativeContact): void {}
  /**
   * @internal Before the engine renames a contact: a store shared by several nodes makes sure
   * the rename may happen here (rejecting changes nothing).
   */
  _beforeRename(_account: string, _protocol: string, _from: string, _to: string): Promise<void> {
    return Promise.resolve();
  }
  /** @internal The engine refused a rename _beforeRename allowed: what it took is given back. */
  _renameRefused(_account: string, _protocol: string, _from: string, _to: string): Promise<void> {
    return Promise.resolve();
  }
  /** @internal A contact renamed (its rows move with it). */
  _renamed(_account: string, _protocol: string, _from: string, _to: string): void {}
  /** @internal Settles when every change reported so far is stored (rejects if one failed). */
  _settled(): Promise<void> {
    return Promise.resolve();
  }
  /** @internal Throws unless this node may open a channel to the contact. */
  _requireOwner(_account: string, _protocol: string, _contact: string): void {}
  /**
   * @internal Before a call acts for the contact: undefined to go on now, or a promise that
   * resolves when it may (rejects when it may not).
   */
  _admit(_account: string, _protocol: string, _contact: string): Promise<void> | undefined {
    return undefined;
  }
  /** @internal Whether the node may act for the contact right now. */
  _mayAct(_account: string, _protocol: string, _contact: string): boolean {
    return true;
  }
  /** @internal Throws unless this store can make a key for an account on demand. */
  _allowsNewAccount(_name: string, _protocol: string): void {}
  /** @internal After the OTR closed. */
  async _close(): Promise<void> {}
}

/** The default: the three Pidgin-format files are the store (one process writes them). */
export class FileStore extends Store {
  readonly kind = 'files';
  /** The three files (defaults: libotr's names in the current directory). */
  readonly files: StoreFiles;

  /** Names the files as the OTR constructor's options do. */
  constructor(files: Partial<StoreFiles> = {}) {
    super();
    if (files === null || typeof files !== 'object') throw invalid(`new FileStore() options must be an object, got ${describe(files)}`);
    rejectUnknownOptions('new FileStore()', files, ['privkeysFile', 'contactsFile', 'instanceTagsFile']);
    this.files = {
      privkeysFile: requireText('privkeysFile', files.privkeysFile ?? 'otr.private_key'),
      contactsFile: requireText('contactsFile', files.contactsFile ?? 'otr.fingerprints'),
      instanceTagsFile: requireText('instanceTagsFile', files.instanceTagsFile ?? 'otr.instance_tags'),
    };
  }

  /** @internal */
  _open(): Promise<StoreFiles> {
    return Promise.resolve(this.files);
  }
}
