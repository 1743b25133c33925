import { EventEmitter } from 'node:events';
import { invalid, requireInteger } from './validate';

/** Options of a {@link Pacer}. */
export interface PacerOptions {
  /** Lines let through per second, on average. */
  linesPerSecond: number;
  /** Lines that may go at once after a quiet spell (default 1). */
  burst?: number;
  /** Sends one line on the transport; called in the order the lines were pushed. */
  send: (line: string) => void;
}

/**
 * Paces a transport's outgoing lines (a token bucket: `burst` at once, then
 * `linesPerSecond`), in order, with the queue visible. One Pacer per connection: a
 * network's flood limit counts every line the connection sends — OTR wire messages of every
 * channel, and the app's own commands — so this sits where they all meet, in front of the
 * socket, not inside one channel. Emits 'drain' when the queue empties.
 */
export class Pacer extends EventEmitter {
  /** Lines let through per second, on average. */
  readonly linesPerSecond: number;
  /** Lines that may go at once after a quiet spell. */
  readonly burst: number;
  readonly #send: (line: string) => void;
  #queue: string[] = [];
  #head = 0;
  #tokens: number;
  #refilledAt = performance.now();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #sent = 0;

  /** Throws `ERR_OTR_INVALID_ARGUMENT` for a rate that is not a positive number or a missing `send`. */
  constructor(options: PacerOptions) {
    super();
    if (options === null || typeof options !== 'object') throw invalid('pacer options must be an object');
    const rate = options.linesPerSecond;
    if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0) throw invalid(`linesPerSecond must be a positive number, got ${String(rate)}`);
    if (typeof options.send !== 'function') throw invalid('send must be a function: it writes one line to the transport');
    this.linesPerSecond = rate;
    this.burst = requireInteger('burst', options.burst ?? 1, 1, 1_000_000);
    this.#send = options.send;
    this.#tokens = this.burst;
  }

  /** Lines waiting to be sent. */
  get depth(): number {
    return this.#queue.length - this.#head;
  }

  /** Lines sent so far. */
  get sent(): number {
    return this.#sent;
  }

  /** Queues a line; it is sent now if the bucket allows and nothing waits before it. */
  push(line: string): void {
    if (this.#closed) throw invalid('this pacer is closed');
    this.#queue.push(line);
    this.#pump();
  }

  /** Resolves once every queued line has been sent. */
  drained(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.once('drain', resolve));
  }

  /** Stops sending; returns the lines still queued (not sent). */
  close(): string[] {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const left = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    return left;
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#refilledAt) * this.linesPerSecond) / 1000);
    this.#refilledAt = now;
  }

  #pump(): void {
    if (this.#timer || this.#closed) return;
    this.#refill();
    while (this.depth > 0 && this.#tokens >= 1) {
      this.#tokens -= 1;
      const line = this.#queue[this.#head++];
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      this.#sent++;
      this.#send(line);
      if (this.#closed) return;
    }
    if (this.depth === 0) {
      this.#queue = [];
      this.#head = 0;
      this.emit('drain');
      return;
    }
    const wait = Math.ceil(((1 - this.#tokens) * 1000) / this.linesPerSecond);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, wait);
  }
}
