// The internals of one OTR instance: the engine's handle and the parts that serve it (its
// calls, what it delivers and whom that concerns, eviction, the poll timer), and what the
// public classes (AccountContext and the contexts it extends) and the store (StoreHost) ask of
// the instance. The public OTR class holds one and adds options, validation and its events.
import { Account, type AccountContext } from '../account';
import type { Channel } from '../channel';
import type { Contact } from '../contact';
import { ErrorCodes, OtrError, fromNative } from '../errors';
import type { FileSetLock } from '../lock';
import { createHandle, type FilePaths, type NativeHandle, type NativeLimits, type NativeStats } from '../native';
import { ChannelOp, type ChannelOpArgs, type ChannelOpResult } from '../native-contract';
import type { Lease } from '../store/leases';
import type { Store, StoreHost, TrustChange } from '../store/store';
import { Calls } from './calls';
import { Delivery, dispatch, register, unregister } from './delivery';
import { Eviction, type EvictionOptions } from './eviction';
import { PollTimer } from './poll-timer';
import { Routing } from './routing';

/** The public OTR instance as its internals see it: what accounts show as `ctx`, where events go. */
export interface InstanceOwner {
  emit(event: 'error', error: OtrError): boolean;
  emit(event: 'contactEvicted', contact: Contact): boolean;
  emit(event: 'trustChanged', change: TrustChange): boolean;
  emit(event: 'leasesRestored', leases: Lease[]): boolean;
  emit(event: 'leasesLost' | 'leasesSuspended', leases: Lease[], why: string): boolean;
  listenerCount(event: 'error'): number;
}

export interface InstanceOptions extends EvictionOptions {
  /** The instance's number, for the addon's dispatcher (delivery.ts). */
  number: number;
  files: FilePaths;
  limits: NativeLimits;
  /** The lock of the files, released when the instance is disposed. */
  lock: FileSetLock;
  /** The engine skipped a line of the fingerprints file, and kept a dated copy of the file. */
  loadSkipped(line: number, reason: string, copy: string): void;
}

export class Instance implements AccountContext, StoreHost {
  /** The largest message read() hands to libotr, in UTF-8 bytes. */
  readonly maxIncomingSize: number;
  readonly #owner: InstanceOwner;
  readonly #number: number;
  readonly #lock: FileSetLock;
  readonly #calls: Calls;
  readonly #routing: Routing;
  readonly #delivery: Delivery;
  readonly #eviction: Eviction;
  readonly #poll: PollTimer;
  #handle: NativeHandle | undefined;
  #store: Store | undefined;
  #closing: Promise<void> | undefined;
  #queryText: string | undefined;
  #nextChannel = 1;
  #nextContactId = 1;

  /** Makes the engine's handle, which reads the three files (throws what the addon throws). */
  constructor(owner: InstanceOwner, options: InstanceOptions) {
    this.#owner = owner;
    this.#number = options.number;
    this.#lock = options.lock;
    this.maxIncomingSize = options.limits.maxIncomingSize;
    this.#calls = new Calls(
      owner,
      (error) => this.report(error),
      () => this.#eviction.channelIdle(),
    );
    this.#routing = new Routing({
      makeAccount: (state) => new Account(owner, this, state.name, state.protocol, state.fingerprint, state.instag),
      loadSkipped: (line, reason, copy) => options.loadSkipped(line, reason, copy),
      report: (error) => this.report(error),
      store: () => this.#store,
      setPollTimer: (seconds, channel) => this.#poll.set(seconds, channel),
    });
    this.#delivery = new Delivery(this.#calls, this.#routing, () => this.#handle?.resumeDeliveries());
    this.#eviction = new Eviction(options, {
      isOpen: () => !this.#closing && this.#handle !== undefined,
      report: (error) => this.report(error),
      evicted: (contact) => this.#owner.emit('contactEvicted', contact),
    });
    this.#poll = new PollTimer((channel) => {
      if (this.#closing || !this.#handle) return;
      this.channelOp(channel, ChannelOp.Ping, []).catch((error: unknown) => this.report(error));
    });
    this.#handle = createHandle(this.#number, dispatch, options.files, options.limits);
    register(this.#number, this.#delivery);
  }

  /** Applies the state the engine loaded from the files: accounts and contacts, now. */
  loadState(): void {
    const [numbers, count, values] = this.#handle!.takeLoadedState();
    this.#delivery.applyAll(numbers, count, values);
  }

  // ---- what the public OTR class asks ----

  /** The store the instance was opened over: told of every change from now on. */
  attachStore(store: Store): void {
    this.#store = store;
    store._attach(this);
  }

  get store(): Store | undefined {
    return this.#store;
  }

  get queryText(): string | undefined {
    return this.#queryText;
  }

  set queryText(text: string | undefined) {
    this.#queryText = text;
  }

  findAccount(name: string, protocol: string): Account | undefined {
    return this.#routing.accounts.get(`${name}\0${protocol}`);
  }

  accounts(): Account[] {
    return [...this.#routing.accounts.values()];
  }

  accountFromNative(...args: Parameters<Routing['accountFromNative']>): Account {
    return this.#routing.accountFromNative(...args);
  }

  /** Calls whose promise has not settled yet. */
  get pendingCalls(): number {
    return this.#calls.size;
  }

  /** The engine's own figures (throws ERR_OTR_CLOSED after close()). */
  engineStats(): NativeStats {
    this.ensureOpen();
    return this.#handle!.stats();
  }

  /** otr.close() with its options checked (see OTR.close). */
  close(endSessions: boolean): Promise<void> {
    if (this.#closing) return this.#closing;
    const channels = this.#routing.channels;
    for (const channel of channels.values()) channel._stopRetries();
    const handle = this.#handle;
    const store = this.#store;
    // With a shared store, the OTR disconnect goes only to contacts this node may act for now.
    if (store && endSessions) {
      for (const channel of [...channels.values()]) {
        if (!channel._closed && !store._mayAct(channel.account.name, channel.account.protocol, channel.contact.name)) {
          channel._close(`the channel to ${channel.contact.name} is closed`, false, false).catch(() => {});
        }
      }
    }
    const closed = handle
      ? this.#call((job, h) => h.close(job, endSessions), true).then(
          () => this.#dispose(),
          (error: unknown) => {
            this.#dispose();
            throw fromNative(error);
          },
        )
      : Promise.resolve();
    this.#closing = store ? closed.finally(() => store._close()) : closed;
    return this.#closing;
  }

  #dispose(): void {
    this.#poll.set(0, undefined);
    this.#eviction.stop();
    const handle = this.#handle;
    this.#handle = undefined;
    handle?.dispose();
    for (const channel of this.#routing.channels.values()) channel._endSmp('ended');
    this.#lock.release();
    this.#calls.release();
    unregister(this.#number);
  }

  // ---- what the public classes ask (AccountContext) ----

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  get closing(): Promise<void> | undefined {
    return this.#closing;
  }

  ensureOpen(): void {
    if (!this.#handle || this.#closing) throw new OtrError(ErrorCodes.CLOSED, 'this OTR instance is closed');
  }

  /** Errors no caller is waiting for: an 'error' event, or a warning if nobody listens. */
  report(error: unknown): void {
    const wrapped = error instanceof OtrError ? error : new OtrError(ErrorCodes.CALLBACK, String((error as Error)?.message ?? error), { cause: error });
    if (this.#owner.listenerCount('error') > 0) {
      this.#owner.emit('error', wrapped);
    } else {
      process.emitWarning(wrapped.message, { code: wrapped.code, type: 'OtrWarning' });
    }
  }

  call(submit: (job: number, handle: NativeHandle) => void, channel?: Channel): Promise<unknown> {
    return this.#call(submit, false, channel);
  }

  // One engine job; the promise settles when its batch is done. `done` runs once the call
  // succeeded, before anything delivered after it (see PendingCall).
  #call(submit: (job: number, handle: NativeHandle) => void, closing: boolean, channel?: Channel, done?: () => void): Promise<unknown> {
    const handle = this.#handle;
    if (!handle || (this.#closing && !closing)) {
      return Promise.reject(new OtrError(ErrorCodes.CLOSED, 'this OTR instance is closed'));
    }
    return this.#calls.start((job) => submit(job, handle), channel, done);
  }

  storeSettled(): Promise<void> {
    return this.#store ? this.#store._settled() : Promise.resolve();
  }

  contactEvicted(contact: Contact): void {
    this.#owner.emit('contactEvicted', contact);
  }

  channelOp<O extends ChannelOp>(channel: Channel, op: O, args: ChannelOpArgs[O], done?: () => void): Promise<ChannelOpResult[O]> {
    if (channel._closed) return Promise.reject(new OtrError(ErrorCodes.CLOSED, channel._closed));
    // With a shared store, a call acts for the contact only while this node's lease is
    // confirmed; calls that wait keep their order, and later ones queue behind them.
    const admitted = channel._admission ?? this.#store?._admit(channel.account.name, channel.account.protocol, channel.contact.name);
    if (admitted) {
      channel._admission = admitted;
      channel._admissionWaiting++;
      const admittedNow = () => {
        if (--channel._admissionWaiting === 0) channel._admission = undefined;
      };
      return admitted.then(
        () => {
          admittedNow();
          if (channel._closed) throw new OtrError(ErrorCodes.CLOSED, channel._closed);
          return this.#submitOp(channel, op, args, done);
        },
        (error: unknown) => {
          admittedNow();
          throw error;
        },
      );
    }
    return this.#submitOp(channel, op, args, done);
  }

  #submitOp<O extends ChannelOp>(channel: Channel, op: O, args: ChannelOpArgs[O], done?: () => void): Promise<ChannelOpResult[O]> {
    this.#eviction.used(channel);
    const handle = this.#handle;
    if (!handle || this.#closing) return Promise.reject(new OtrError(ErrorCodes.CLOSED, 'this OTR instance is closed'));
    return this.#calls.startOp(handle, channel, op, args, done) as Promise<ChannelOpResult[O]>;
  }

  registerChannel(channel: Channel, open: (job: number, handle: NativeHandle, id: number) => void): number {
    this.ensureOpen();
    const id = this.#nextChannel++;
    this.#routing.channels.set(id, channel);
    this.call((job, handle) => open(job, handle, id)).catch((error: unknown) => {
      // The addon keeps no record of it (one channel per contact): calls on it reject.
      channel._closedByAddon(`the channel to ${channel.contact.name} could not be opened: ${(error as Error)?.message ?? error}`);
      this.report(error);
    });
    this.#eviction.opened(channel);
    return id;
  }

  /** The channel is closed: its id is forgotten once its effects have arrived. */
  channelClosed(channel: Channel, forgotten: Promise<unknown>): void {
    const channels = this.#routing.channels;
    this.#eviction.closed(channel);
    this.#poll.channelClosed(channel, channels.values().next().value);
    const drop = () => {
      channels.delete(channel._id);
      this.#poll.channelGone(channel);
    };
    forgotten.then(drop, drop);
  }

  newContactId(): number {
    return this.#nextContactId++;
  }

  contactAdded(contact: Contact): void {
    this.#routing.contacts.set(contact._id, contact);
  }

  contactRemoved(contact: Contact): void {
    if (this.#routing.contacts.get(contact._id) === contact) this.#routing.contacts.delete(contact._id);
  }

  // ---- what the store asks (StoreHost) ----

  trustChanged(change: TrustChange): void {
    this.#owner.emit('trustChanged', change);
  }

  leaseEvent(event: 'leasesLost' | 'leasesSuspended' | 'leasesRestored', leases: Lease[], why: string): void {
    if (event === 'leasesRestored') this.#owner.emit(event, leases);
    else this.#owner.emit(event, leases, why);
  }

  hasAccount(account: string, protocol: string): boolean {
    return this.findAccount(account, protocol) !== undefined;
  }

  hasIdleContact(account: string, protocol: string, name: string): boolean {
    const contact = this.#contact(account, protocol, name);
    return contact !== undefined && !contact.existingChannel;
  }

  renameContact(account: string, protocol: string, from: string, to: string): Promise<void> {
    return this.#contact(account, protocol, from)?.rename(to) ?? Promise.resolve();
  }

  closeChannel(account: string, protocol: string, name: string): Promise<void> {
    return this.#contact(account, protocol, name)?.existingChannel?.close() ?? Promise.resolve();
  }

  showContact(account: string, protocol: string, name: string): void {
    this.findAccount(account, protocol)?._contactFromNative(name);
  }

  #contact(account: string, protocol: string, name: string): Contact | undefined {
    return this.findAccount(account, protocol)?.findContact(name);
  }
}
