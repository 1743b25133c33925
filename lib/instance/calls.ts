// The calls of one OTR instance on their way through the engine: each has a job number, and
// settles when the batch that ends its job is applied (delivery.ts). While any is in flight,
// the instance's owner (the public OTR) is held strongly, so every promise settles even if
// the application dropped the instance; idle, nothing here holds it.
import type { Channel } from '../channel';
import { ErrorCodes, OtrError, fromNative } from '../errors';
import type { NativeHandle } from '../native';
import { BatchFlag, type ChannelOp, type ChannelOpArgs } from '../native-contract';

/** A call in flight: how its promise settles, and what runs first. */
export class PendingCall {
  resolve: (value: unknown) => void = beforeBind;
  reject: (error: unknown) => void = beforeBind;
  callbackError?: unknown = undefined;

  constructor(
    // whose call it is: a channel with calls in flight is never evicted
    readonly channel: Channel | undefined,
    // Run when the call succeeds, before its promise resolves and before any later delivery is applied.
    readonly done: (() => void) | undefined,
  ) {}

  bind(resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
    this.resolve = resolve;
    this.reject = reject;
  }
}

// What resolve and reject are until the promise's executor binds them (synchronously, in its constructor).
function beforeBind(): void {}

// The owners of instances with calls in flight.
const busy = new Set<object>();

export class Calls {
  readonly #owner: object;
  readonly #report: (error: unknown) => void;
  readonly #channelIdle: (channel: Channel) => void;
  #nextJob = 1;
  #calls = new Map<number, PendingCall>();

  /**
   * `report` takes a failure no call waits for; `channelIdle` hears of a channel whose last
   * call in flight settled.
   */
  constructor(owner: object, report: (error: unknown) => void, channelIdle: (channel: Channel) => void) {
    this.#owner = owner;
    this.#report = report;
    this.#channelIdle = channelIdle;
  }

  /** Calls whose promise has not settled yet. */
  get size(): number {
    return this.#calls.size;
  }

  /** The call of a job, if it is still waiting. */
  get(job: number): PendingCall | undefined {
    return this.#calls.get(job);
  }

  /** Queues one job (`submit` hands it to the engine); the promise settles with its batch. */
  start(submit: (job: number) => void, channel?: Channel, done?: () => void): Promise<unknown> {
    const call = new PendingCall(channel, done);
    const promise = new Promise((resolve, reject) => call.bind(resolve, reject));
    const job = this.#admit(call);
    try {
      submit(job);
    } catch (error) {
      this.#refused(job, call, error);
    }
    return promise;
  }

  /**
   * start() for a channel's call, handle.channelOp(job, channel, op, ...args): the path of
   * every message, so without a closure or an argument list made per call.
   */
  startOp<O extends ChannelOp>(handle: NativeHandle, channel: Channel, op: O, args: ChannelOpArgs[O], done?: () => void): Promise<unknown> {
    const call = new PendingCall(channel, done);
    const promise = new Promise((resolve, reject) => call.bind(resolve, reject));
    const job = this.#admit(call);
    try {
      if (args.length === 1) (handle.channelOp as (job: number, channel: number, op: O, arg: unknown) => void)(job, channel._id, op, args[0]);
      else handle.channelOp(job, channel._id, op, ...args);
    } catch (error) {
      this.#refused(job, call, error);
    }
    return promise;
  }

  #admit(call: PendingCall): number {
    const job = this.#nextJob++;
    if (this.#nextJob > 0xffffffff) this.#nextJob = 1;
    if (call.channel) call.channel._inFlight++;
    this.#calls.set(job, call);
    if (this.#calls.size === 1) busy.add(this.#owner);
    return job;
  }

  // The addon refused the job (the caller's mistake): nothing is in flight.
  #refused(job: number, call: PendingCall, error: unknown): void {
    this.#calls.delete(job);
    if (call.channel) call.channel._inFlight--;
    if (this.#calls.size === 0) busy.delete(this.#owner);
    call.reject(fromNative(error));
  }

  settle(job: number, call: PendingCall, flags: number, result: unknown): void {
    this.#calls.delete(job);
    if (call.channel && --call.channel._inFlight === 0) this.#channelIdle(call.channel);
    if (this.#calls.size === 0) busy.delete(this.#owner);
    if (!(flags & BatchFlag.Ok)) {
      call.reject(fromNative(result));
    } else if (call.callbackError !== undefined) {
      const cause = call.callbackError;
      call.reject(asCallbackError(cause));
    } else {
      call.done?.();
      call.resolve(result);
    }
  }

  /** A callback threw while the batch of `call` was applied: the call rejects (or, with none, it is reported). */
  callbackFailed(call: PendingCall | undefined, error: unknown): void {
    if (call) {
      if (call.callbackError === undefined) call.callbackError = error ?? new Error('callback threw a nullish value');
    } else {
      this.#report(asCallbackError(error));
    }
  }

  /** The instance is disposed: nothing holds its owner any more. */
  release(): void {
    busy.delete(this.#owner);
  }
}

function asCallbackError(cause: unknown): OtrError {
  if (cause instanceof OtrError && cause.code === ErrorCodes.CALLBACK) return cause;
  return new OtrError(ErrorCodes.CALLBACK, `a callback threw: ${(cause as Error)?.message ?? String(cause)}`, { cause });
}
