export {
  OTR,
  setThreads,
  type OTROptions,
  type OpenOptions,
  type OTRStats,
  type PoolThreadStats,
  type CloseOptions,
  type LoadReport,
  type OTREvents,
  type Limits,
} from './otr';
export { Store, FileStore, type StoreFiles, type TrustChange } from './store/store';
export { PostgresStore, type PostgresStoreOptions, type Lease } from './store/postgres-store';
export { Account } from './account';
export { Contact } from './contact';
export { Fingerprint } from './fingerprint';
export {
  Channel,
  type ChannelOptions,
  type ReadInfo,
  type QueryResult,
  type SessionRestartInfo,
  type UnverifiedInstanceInfo,
  type SmpOutcome,
  type SmpExchange,
} from './channel';
export { Router } from './router';
export { Pacer, type PacerOptions, type PacerDrop, type PacerEvents } from './pacer';
export { OtrError, ErrorCodes, type OtrErrorCode } from './errors';
export type { Status } from './status';
export * from './constants';
import { libotrVersion, nativeConstants } from './native';

/** The libotr version the addon runs against, and the values of libotr's own constants. */
export const libotr = {
  /** libotr's version string (`4.1.1`). */
  get version(): string {
    return libotrVersion();
  },
  /** libotr's own constants by their C names, read from the compiled headers. */
  get constants(): Record<string, number> {
    return nativeConstants();
  },
};
