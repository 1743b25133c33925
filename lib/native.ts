// The one typed door to the compiled addon: everything it exports is declared here, and no
// other file in lib/ loads or calls it directly.
import * as path from 'node:path';
import { ErrorCodes, OtrError } from './errors';
import { SHARED_NUMBERS, type ChannelOp, type ChannelOpArgs, type NativeStats } from './native-contract';
import { MAX_NAME_BYTES } from './validate';

export type { NativeAccount, NativeContact, NativeFingerprint, NativeSession, NativeStats } from './native-contract';
export { BATCH_SLOTS, EFFECT_SLOTS } from './native-contract';

/**
 * Called by the addon on the JS thread with the next chunk of what the pool's threads finished
 * for this instance, in order. `numbers[0, count)` holds records, each a batch header (BATCH_SLOTS numbers, BatchSlot)
 * followed by its effects (EFFECT_SLOTS numbers each, read by decodeEffect): the layout
 * src-native/contract.json declares. A "value" is an index into `values` (strings, objects,
 * Buffers: the arguments after `count`), or -1 for none. The return value answers the query,
 * when the chunk carries one (always its last batch). `count` 0: the addon's slice of this turn
 * of the event loop is over and results wait; call the handle's resumeDeliveries() on a later
 * turn.
 */
export type Dispatch = (instance: number, numbers: Float64Array, count: number, ...values: unknown[]) => unknown;

export interface NativeHandle {
  /** The accounts and contacts the constructor read, in the dispatcher's layout. */
  takeLoadedState(): [Float64Array, number, unknown[]];
  ensureAccount(job: number, name: string, protocol: string): void;
  // `contact`: the JS Contact's id, bound by the addon to the contact of `username` on first
  // use and resolved by id from then on (0: by name alone).
  addContact(job: number, contact: number, account: string, protocol: string, username: string, fingerprintHex: string, verified: boolean): void;
  setTrust(job: number, contact: number, account: string, protocol: string, username: string, fingerprintHex: string, verified: boolean): void;
  forgetFingerprint(job: number, contact: number, account: string, protocol: string, username: string, fingerprintHex: string): void;
  forgetContact(
    job: number,
    contact: number,
    account: string,
    protocol: string,
    username: string,
    dropUnverifiedFingerprints: boolean,
    endSessions: boolean,
  ): void;
  /** Resolves with whether a squatter was displaced from `to`. */
  renameContact(job: number, contact: number, account: string, protocol: string, from: string, to: string): void;
  openChannel(
    job: number,
    channel: number,
    contact: number,
    account: string,
    protocol: string,
    username: string,
    policy: number,
    maxMessageSize: number,
    callbacks: number,
    lineBased: boolean,
    queryText: string | undefined,
    restartLostSessions: boolean,
  ): void;
  /** One call of a channel: `args` as src-native/contract.json declares them for `op`. */
  channelOp<O extends ChannelOp>(job: number, channel: number, op: O, ...args: ChannelOpArgs[O]): void;
  close(job: number, endSessions: boolean): void;
  dispose(): void;
  stats(): NativeStats;
  /** Applies the results still waiting, through the dispatcher (see Dispatch, `count` 0). */
  resumeDeliveries(): void;
}

/** The process-wide pool's figures (src-native/engine/pool.h). */
export interface NativePoolStats {
  threads: number;
  queued: number;
  busyNs: number[];
  tasks: number[];
}

interface Addon {
  Handle: new (instance: number, dispatch: Dispatch, privkeys: string, fingerprints: string, instags: string, limits: NativeLimits) => NativeHandle;
  constants: Record<string, number>;
  libotrVersion: string;
  headersVersion: string;
  maxNameBytes: number;
  initError: string | undefined;
  /** An exclusive flock() on path (created 0600); throws { code: 'ERR_OTR_LOCKED' } when held. */
  lockFile(path: string): number;
  unlockFile(fd: number): void;
  /** Wipes and removes the temp files a killed write of `file` left (src-native/io/files.h); how many. */
  sweepTempFiles(file: string): number;
  /** The names of the `parent/<prefix>*` work directories whose owner is gone, wiped and removed. */
  sweepWorkDirs(parent: string, prefix: string, marker: string, keyFile: string): string[];
  sharedNumbers: Record<string, number>;
  setThreads(threads: number): void;
  threads(): number;
  poolStats(): NativePoolStats;
}

/** Bounds on what one contact's messages can make the addon keep (see lib/otr.ts). */
export interface NativeLimits {
  maxInstancesPerContact: number;
  maxFragmentedSize: number;
  maxIncomingSize: number;
  keyWorkPerWindow: number;
  keyWorkWindowMs: number;
}

/**
 * Why the addon's shared numbers differ from ours, or undefined: an addon built from another
 * src-native/contract.json (a stale build). CONTRACT_DIGEST covers the whole contract (docs
 * aside): the arguments of each op and the fields of each effect too.
 */
export function sharedNumbersMismatch(native: Record<string, number> | undefined): string | undefined {
  const names = new Set([...Object.keys(SHARED_NUMBERS), ...Object.keys(native ?? {})]);
  const differ = [...names].filter((name) => native?.[name] !== SHARED_NUMBERS[name]);
  if (differ.length === 0) return undefined;
  const shown = differ
    .slice(0, 5)
    .map((name) => `${name} (addon ${native?.[name]}, lib ${SHARED_NUMBERS[name]})`)
    .join(', ');
  return `the addon and lib/native.ts disagree on ${differ.length} shared number(s): ${shown}: the addon was built from another src-native/contract.json; rebuild (npm run compile)`;
}

let addon: Addon | undefined;
let loadFailure: OtrError | undefined;

function loadAddon(): Addon {
  if (addon) return addon;
  if (loadFailure) throw loadFailure;
  try {
    // PROTOCOL_OTR_ADDON=/path/to/protocol_otr.node loads that file instead of the one
    // node-gyp-build finds: for development builds made elsewhere (cmake-js, sanitizers;
    // see docs/RELIABILITY.md).
    const override = process.env.PROTOCOL_OTR_ADDON;
    if (override) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      addon = require(path.resolve(override)) as Addon;
    } else {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const nodeGypBuild = require('node-gyp-build') as (dir: string) => Addon;
      addon = nodeGypBuild(path.join(__dirname, '..'));
    }
  } catch (cause) {
    loadFailure = new OtrError(ErrorCodes.ADDON_LOAD, explainLoadFailure(cause instanceof Error ? cause.message : String(cause)), { cause });
    throw loadFailure;
  }
  if (!addon.initError) addon.initError = sharedNumbersMismatch(addon.sharedNumbers);
  if (!addon.initError && addon.maxNameBytes !== MAX_NAME_BYTES) {
    addon.initError = `the addon checks names against ${addon.maxNameBytes} bytes, lib/validate.ts against ${MAX_NAME_BYTES}: rebuild (npm run compile)`;
  }
  if (addon.initError) {
    loadFailure = new OtrError(ErrorCodes.INIT, addon.initError);
    addon = undefined;
    throw loadFailure;
  }
  return addon;
}

const BUILD_NEEDS = "libotr's headers and a C++ toolchain (Debian/Ubuntu: apt-get install libotr5-dev libgcrypt20-dev pkg-config g++ make python3)";
// libotr's run-time package: Debian 13 and Ubuntu 24.04 renamed it in the 64-bit time_t transition.
const RUNTIME_PACKAGES =
  'Debian 11-12 and Ubuntu 20.04-22.04: apt-get install libotr5; Debian 13 and Ubuntu 24.04 or later: apt-get install libotr5t64; Alpine: apk add libotr';

/** What went wrong loading the addon, said with the fix. */
export function explainLoadFailure(reason: string): string {
  const platform = `${process.platform}-${process.arch}`;
  const tooOld = /(GLIBC|GLIBCXX|CXXABI)_[0-9.]*[0-9](?=' not found)/.exec(reason);
  if (tooOld) {
    return (
      `protocol-otr's prebuilt binary for ${platform} needs a newer C${tooOld[1] === 'GLIBC' ? '' : '++'} library than this ` +
      `system has (it needs ${tooOld[0]}; the binaries need glibc 2.28 and libstdc++ from GCC 10: RHEL 8, Debian 11, ` +
      `Ubuntu 20.04 or newer). Build it from source instead: install ${BUILD_NEEDS}, then run ` +
      `npm rebuild protocol-otr --build-from-source — ${reason}`
    );
  }
  if (/libotr\.so|libgcrypt\.so/.test(reason)) {
    return `protocol-otr needs the system libotr 4.1: install it (${RUNTIME_PACKAGES}) — ${reason}`;
  }
  if (/No native build was found/.test(reason)) {
    return (
      `protocol-otr has no binary for ${platform}: none is prebuilt for this platform and none was built at ` +
      `install (npm install --ignore-scripts skips that build). Run npm rebuild protocol-otr, which builds it ` +
      `from source and needs ${BUILD_NEEDS} — ${reason}`
    );
  }
  return `protocol-otr's native addon could not be loaded; npm rebuild protocol-otr --build-from-source builds it again, which needs ${BUILD_NEEDS} — ${reason}`;
}

export interface FilePaths {
  privkeys: string;
  fingerprints: string;
  instags: string;
}

/** Loads the files (throws { code, message } when one cannot be used); jobs then run on the shared pool. */
export function createHandle(instance: number, dispatch: Dispatch, files: FilePaths, limits: NativeLimits): NativeHandle {
  const { Handle } = loadAddon();
  return new Handle(instance, dispatch, files.privkeys, files.fingerprints, files.instags, limits);
}

/** The descriptor holding an exclusive advisory lock on path; see lib/lock.ts. */
export function lockFile(file: string): number {
  return loadAddon().lockFile(file);
}

export function unlockFile(fd: number): void {
  loadAddon().unlockFile(fd);
}

/**
 * Wipes and removes the temp files a killed write of `file` left beside it: `<file>.tmp-`
 * and 12 hex digits, the names both writers use (src-native/io/files.h). Only the single writer
 * of `file` may call it: another writer's temp file would vanish under it.
 */
export function sweepTempFiles(file: string): number {
  return loadAddon().sweepTempFiles(file);
}

/**
 * Removes the `parent/<prefix>*` directories of this user whose `marker` no longer carries
 * its owner's flock, wiping `keyFile` (and the names starting with it) first; the names
 * removed. Works on descriptors: `parent` and each directory are opened without following a
 * link, and nothing is reached again by path once it was checked.
 */
export function sweepWorkDirs(parent: string, prefix: string, marker: string, keyFile: string): string[] {
  return loadAddon().sweepWorkDirs(parent, prefix, marker, keyFile);
}

/** Sizes the process-wide pool every OTR instance runs its libotr work on. */
export function setPoolThreads(threads: number): void {
  loadAddon().setThreads(threads);
}

/** The pool's size; 0 until the first instance or setThreads() sized it. */
export function poolThreads(): number {
  return loadAddon().threads();
}

export function poolStats(): NativePoolStats {
  return loadAddon().poolStats();
}

export function nativeConstants(): Record<string, number> {
  return loadAddon().constants;
}

export function libotrVersion(): string {
  return loadAddon().libotrVersion;
}
