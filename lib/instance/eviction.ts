// Contacts freed by the library: past maxContacts (the one with the least to lose among the
// least recently used), and after idleSessionTimeout without a call. Only channels are
// tracked, and only with one of the two options.
import type { Channel } from '../channel';
import type { Contact } from '../contact';
import { ContactFlag, SessionStatus } from '../native-contract';

/** The options of the instance that bound its contacts (see OTROptions). */
export interface EvictionOptions {
  maxContacts: number;
  idleSessionTimeout: number;
  evictUnverifiedFingerprints: boolean;
}

/** What eviction needs of the rest of the instance. */
export interface EvictionHost {
  /** Whether the instance is open (close() not called). */
  isOpen(): boolean;
  /** An error no caller waits for. */
  report(error: unknown): void;
  /** 'contactEvicted' on the instance. */
  evicted(contact: Contact): void;
}

export class Eviction {
  readonly #maxContacts: number;
  readonly #idleSessionTimeout: number;
  readonly #evictUnverifiedFingerprints: boolean;
  readonly #host: EvictionHost;
  // Open channels, least recently used first, with when each was last used.
  #recent = new Map<Channel, number>();
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(options: EvictionOptions, host: EvictionHost) {
    this.#maxContacts = options.maxContacts;
    this.#idleSessionTimeout = options.idleSessionTimeout;
    this.#evictUnverifiedFingerprints = options.evictUnverifiedFingerprints;
    this.#host = host;
  }

  /** A channel opened: tracked (with maxContacts or idleSessionTimeout), and the cap kept. */
  opened(channel: Channel): void {
    if (this.#maxContacts <= 0 && this.#idleSessionTimeout <= 0) return;
    this.#recent.set(channel, performance.now());
    this.#evictOverCap(channel);
    this.#armIdleTimer();
  }

  /** A call of the channel: it is the most recently used. */
  used(channel: Channel): void {
    if (this.#recent.delete(channel)) this.#recent.set(channel, performance.now());
  }

  /** The channel closed. */
  closed(channel: Channel): void {
    this.#recent.delete(channel);
  }

  /** The channel's last call in flight settled: it may be freed now, if the cap is exceeded. */
  channelIdle(): void {
    if (this.#maxContacts > 0 && this.#recent.size > this.#maxContacts) queueMicrotask(() => this.#evictOverCap());
  }

  /** The instance is disposed. */
  stop(): void {
    if (this.#idleTimer) clearInterval(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  // Frees contacts while more than maxContacts have an open channel: one with no call in
  // flight (its results are still coming) and no rename on its way, among the least recently
  // used three quarters (the newest quarter — conversations just started — is left alone while
  // there are older ones): one with nothing to lose first, then one with a session, an AKE
  // under way or a verified fingerprint (an encrypted or finished one leaves a tombstone), then
  // one with writes held (each reported); the least recently used first within each. None
  // free: the cap is exceeded until a call settles (see channelIdle).
  #evictOverCap(opened?: Channel): void {
    while (this.#maxContacts > 0 && this.#recent.size > this.#maxContacts) {
      const older = this.#recent.size - Math.floor(this.#recent.size / 4);
      const victim = this.#pickVictim(opened, older) ?? this.#pickVictim(opened, Infinity);
      if (!victim) return;
      this.#evict(victim, 'maxContacts');
    }
  }

  // The first `within` channels in least-recently-used order: the one with the least to lose.
  #pickVictim(opened: Channel | undefined, within: number): Channel | undefined {
    let victim: Channel | undefined;
    let victimTier = Infinity;
    let seen = 0;
    for (const channel of this.#recent.keys()) {
      if (seen++ >= within) break;
      if (channel === opened || !this.#evictable(channel)) continue;
      const tier = evictionTier(channel);
      if (tier < victimTier) {
        victim = channel;
        victimTier = tier;
        if (tier === 0) break;
      }
    }
    return victim;
  }

  #evictable(channel: Channel): boolean {
    return channel._inFlight === 0 && !channel._closed && !channel.account._nameBusy(channel.contact.name);
  }

  #evict(channel: Channel, why: string): void {
    const contact = channel.contact;
    this.#recent.delete(channel);
    contact
      ._forget({ dropUnverified: this.#evictUnverifiedFingerprints, endSessions: true, reason: `${contact.name} was evicted (${why})` })
      .catch((error: unknown) => this.#host.report(error));
    this.#host.evicted(contact);
  }

  #armIdleTimer(): void {
    if (this.#idleSessionTimeout <= 0 || this.#idleTimer) return;
    const self = new WeakRef(this);
    this.#idleTimer = setInterval(() => self.deref()?.expireIdle(), Math.max(10, Math.min(this.#idleSessionTimeout / 4, 60_000)));
    this.#idleTimer.unref();
  }

  /** Frees the contacts idle for idleSessionTimeout (oldest first). */
  expireIdle(): void {
    if (!this.#host.isOpen()) return;
    const before = performance.now() - this.#idleSessionTimeout;
    for (const [channel, used] of [...this.#recent]) {
      if (used > before) break;
      if (this.#evictable(channel)) this.#evict(channel, 'idleSessionTimeout');
    }
  }
}

// What freeing the channel's contact would lose (lower is less): 0 nothing, 1 a session, one
// on its way (an AKE started) or trust, 2 writes waiting for an encrypted session.
function evictionTier(channel: Channel): number {
  const state = channel.contact._state;
  const flags = state?.flags ?? 0;
  if (flags & ContactFlag.WritesHeld) return 2;
  if (flags & (ContactFlag.WasPrivate | ContactFlag.Refreshing | ContactFlag.AkeUnderWay)) return 1;
  if (state && state.status !== SessionStatus.Unused && state.status !== SessionStatus.NotPrivate) return 1; // encrypted or finished
  if (state?.sessions.some((s) => s.status !== SessionStatus.Unused && s.status !== SessionStatus.NotPrivate)) return 1;
  if (channel.contact.fingerprints().some((fp) => fp.isVerified)) return 1;
  return 0;
}
