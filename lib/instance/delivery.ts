// What the engine hands over, applied on the JS thread: every delivery of an instance (one
// call of the addon's dispatcher, holding finished batches) is decoded batch by batch, each
// effect handed to routing.ts and each query answered through it, each finished job's call
// settled (calls.ts). Under load the addon slices the work so that timers and I/O run in
// between (src-native/napi/delivery_queue.h).
import { BATCH_SLOTS, BatchFlag, BatchSlot, EFFECT_SLOTS, decodeEffect, decodeQuery } from '../native-contract';
import type { Calls } from './calls';
import type { Routing } from './routing';

// Instances reachable from the addon's dispatcher, by number. Weak: while calls are in
// flight their owner is held by calls.ts, so their promises always settle; an idle instance
// nobody holds can be collected.
const instances = new Map<number, WeakRef<Delivery>>();
let nextInstance = 1;

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

/** The addon's dispatcher: every delivery of every instance of the process comes here. */
export function dispatch(instance: number, numbers: Float64Array, count: number, ...values: unknown[]): unknown {
  return instances.get(instance)?.deref()?.deliver(numbers, count, values);
}

export class Delivery {
  readonly #calls: Calls;
  readonly #routing: Routing;

  readonly #resume: () => void;

  /** `resume` asks the addon for the results still waiting (handle.resumeDeliveries()). */
  constructor(calls: Calls, routing: Routing, resume: () => void) {
    this.#calls = calls;
    this.#routing = routing;
    this.#resume = resume;
  }

  /** Applies all of it now, however long (the state the engine loaded, before the constructor returns). */
  applyAll(numbers: Float64Array, count: number, values: unknown[]): void {
    this.#applyBatches(numbers, count, values);
  }

  /**
   * Runs on the JS thread for each chunk of results the addon applies, in order. The addon
   * keeps what waits in native memory and slices the work: past half a millisecond in one
   * turn of the event loop it calls with `count` 0 instead, and the rest comes when
   * resumeDeliveries() asks for it on a later turn (timers and I/O run in between). A chunk
   * that ends with a question returns the answer.
   */
  deliver(numbers: Float64Array, count: number, values: unknown[]): unknown {
    if (count === 0) {
      setImmediate(this.#resume);
      return undefined;
    }
    return this.#applyBatches(numbers, count, values).answer;
  }

  // Applies the batches in numbers[0, count); `answer`: the last question's.
  #applyBatches(numbers: Float64Array, count: number, values: unknown[]): { answer: unknown } {
    let answer: unknown;
    let at = 0;
    while (at < count) {
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
    return { answer };
  }
}
