export { OTR, type OTROptions } from './otr';
export { Account } from './account';
export { Contact } from './contact';
export { Fingerprint } from './fingerprint';
export { Channel, type ChannelOptions } from './channel';
export { OtrError, ErrorCodes, type OtrErrorCode } from './errors';
export type { Status } from './status';
export * from './constants';
import { libotrVersion, nativeConstants } from './native';

/** The libotr version the addon runs against, and the values of libotr's own constants. */
export const libotr = {
  get version(): string {
    return libotrVersion();
  },
  get constants(): Record<string, number> {
    return nativeConstants();
  },
};
