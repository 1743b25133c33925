// What the engine hands over, applied on the JS thread: every delivery of an instance (one
// call of the addon's dispatcher, holding finished batches) is decoded batch by batch, each
// effect handed to routing.ts and each query answered through it, each finished job's call
// settled (calls.ts); under load the work is sliced so that timers and I/O run in between.
import { BATCH_SLOTS, BatchFlag, BatchSlot, EFFECT_SLOTS, decodeEffect, decodeQuery } from '../native-contract';
import type { Calls } from './calls';
import type { Routing } from './routing';

// Instances reachable from the addon's dispatcher, by number. Weak: while calls are in
// flight their owner is held by calls.ts, so their promises always settle; an idle instance
// nobody holds can be collected.
const instances = new Map<number, WeakRef<Delivery>>();
let nextInstance = 1;

// How long results are applied in one turn of the event loop before the rest waits for the
// next (see Delivery.deliver).
const DELIVERY_SLICE_MS = 0.5;

/** A number for a new instance (the addon names the instance's deliveries with it). */
export function newInstanceNumber(): number {
  return nextInstance++;
}

/** Deliveries for `instance` go to `delivery` from now on. */
export function register(instance: number, delivery: Delivery): void {
  instances.set(instance, new WeakRef(delivery));
}

/** The instance is closed or collected: its deliveries go nowhere. */
export function unregister(instance: number): void {
  instances.delete(instance);
}

// Whether a delivery ends with a question a libotr call waits on (only its last batch can).
function asksForValue(numbers: Float64Array, count: number): boolean {
  let at = 0;
  let queryAt = -1;
  while (at < count) {
    queryAt = numbers[at + BatchSlot.Query];
    at += BATCH_SLOTS + numbers[at + BatchSlot.Effects] * EFFECT_SLOTS;
  }
  return queryAt >= 0;
}

/** The addon's dispatcher: every delivery of every instance of the process comes here. */
export function dispatch(instance: number, numbers: Float64Array, count: number, ...values: unknown[]): unknown {
  return instances.get(instance)?.deref()?.deliver(numbers, count, values);
}

export class Delivery {
  readonly #calls: Calls;
  readonly #routing: Routing;

  constructor(calls: Calls, routing: Routing) {
    this.#calls = calls;
    this.#routing = routing;
  }

  /** Applies all of it now, however long (the state the engine loaded, before the constructor returns). */
  applyAll(numbers: Float64Array, count: number, values: unknown[]): void {
    this.#applyBatches(numbers, count, values, Infinity);
  }

  /**
   * Runs on the JS thread for everything the addon delivers, in order. Node hands
   * over every delivery waiting for the thread in one go, so under load results would be
   * applied for tens of milliseconds without a break: past DELIVERY_SLICE_MS the rest waits
   * in #backlog for the next turn of the event loop (timers and I/O run in between). A
   * delivery that asks for a callback's value is applied at once, after the backlog, since a
   * libotr call waits for the answer.
   */
  deliver(numbers: Float64Array, count: number, values: unknown[]): unknown {
    if (asksForValue(numbers, count)) {
      this.#applyBacklog(Infinity);
      return this.#applyBatches(numbers, count, values, Infinity).answer;
    }
    if (this.#backlog.length > 0) {
      this.#backlog.push({ numbers: numbers.slice(0, count), values });
      return undefined;
    }
    const { at } = this.#applyBatches(numbers, count, values, performance.now() + DELIVERY_SLICE_MS);
    if (at < count) {
      // The handle reuses its array for the next delivery: keep a copy of what is left.
      this.#backlog.push({ numbers: numbers.slice(at, count), values });
      setImmediate(this.#continueBacklog);
    }
    return undefined;
  }

  #backlog: { numbers: Float64Array; values: unknown[] }[] = [];

  #continueBacklog = (): void => {
    if (!this.#applyBacklog(performance.now() + DELIVERY_SLICE_MS)) setImmediate(this.#continueBacklog);
  };

  // Applies waiting deliveries until `deadline`; true when none is left.
  #applyBacklog(deadline: number): boolean {
    while (this.#backlog.length > 0) {
      const first = this.#backlog[0];
      const { at } = this.#applyBatches(first.numbers, first.numbers.length, first.values, deadline);
      if (at < first.numbers.length) {
        first.numbers = first.numbers.subarray(at);
        return false;
      }
      this.#backlog.shift();
    }
    return true;
  }

  // Applies whole batches until `count`, or until `deadline` has passed; `at`: where it stopped.
  #applyBatches(numbers: Float64Array, count: number, values: unknown[], deadline: number): { at: number; answer: unknown } {
    let answer: unknown;
    let at = 0;
    while (at < count) {
      if (deadline !== Infinity && performance.now() > deadline) break;
      const job = numbers[at + BatchSlot.Job];
      const flags = numbers[at + BatchSlot.Flags];
      const resultAt = numbers[at + BatchSlot.Result];
      const queryAt = numbers[at + BatchSlot.Query];
      const effects = numbers[at + BatchSlot.Effects];
      at += BATCH_SLOTS;
      const call = job !== 0 ? this.#calls.get(job) : undefined;
      for (let k = 0; k < effects; k++, at += EFFECT_SLOTS) {
        const effect = decodeEffect(numbers, at, values);
        if (!effect) continue;
        try {
          this.#routing.apply(effect);
        } catch (error) {
          this.#calls.callbackFailed(call, error);
        }
      }
      if (queryAt >= 0) {
        try {
          const query = decodeQuery(values[queryAt] as unknown[]);
          answer = query && this.#routing.answer(query);
        } catch (error) {
          this.#calls.callbackFailed(call, error);
          answer = undefined;
        }
      }
      if (flags & BatchFlag.Done && call) this.#calls.settle(job, call, flags, resultAt < 0 ? undefined : values[resultAt]);
    }
    return { at, answer };
  }
}
