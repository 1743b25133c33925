import { EventEmitter } from 'node:events';
import { describe, invalid, rejectUnknownOptions, requireInteger } from './validate';

/** The default of {@link PacerOptions.maxDepth}: lines waiting in all. */
const DEFAULT_MAX_DEPTH = 20_000;
/** The default of {@link PacerOptions.maxDepthPerTarget}: lines waiting for one target. */
const DEFAULT_MAX_DEPTH_PER_TARGET = 1_000;
const MAX_BOUND = 0xffffffff;
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Options of a {@link Pacer}. */
export interface PacerOptions {
  /** Lines let through per second, on average. */
  linesPerSecond: number;
  /** Lines that may go at once after a quiet spell (default 1). */
  burst?: number;
  /**
   * Sends one line on the transport. Lines of one target (and the lines pushed with none) are
   * sent in the order they were pushed; targets take turns (see {@link Pacer}).
   */
  send: (line: string) => void;
  /**
   * At most this many lines wait, all targets together (default 20,000: at IRC's 2 lines/s,
   * almost three hours of backlog). A line pushed beyond it is dropped (see {@link Pacer.push}).
   */
  maxDepth?: number;
  /**
   * At most this many lines wait for one target, the lines pushed with no target counting as
   * one (default 1,000: at IRC's 2 lines/s, over eight minutes of one contact's lines, far
   * beyond a real conversation's backlog). A line pushed beyond it is dropped.
   */
  maxDepthPerTarget?: number;
}

const PACER_OPTION_NAMES = Object.keys({
  linesPerSecond: true,
  burst: true,
  send: true,
  maxDepth: true,
  maxDepthPerTarget: true,
} satisfies Record<keyof PacerOptions, true>);

/** What a `'drop'` event of a {@link Pacer} reports. */
export interface PacerDrop {
  /** The target whose lines were dropped (`undefined`: lines pushed with no target). */
  target: string | undefined;
  /** Lines of that target dropped since its previous `'drop'` event. */
  dropped: number;
}

/** The events of a {@link Pacer}. */
export interface PacerEvents {
  /** Nothing is waiting any more. */
  drain: [];
  /** Lines pushed for a target were dropped over a bound; at most two per overflow (see {@link Pacer}). */
  drop: [report: PacerDrop];
}

// A first-in first-out queue that does not copy on every shift.
class Fifo<T> {
  #items: T[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T {
    return this.#items[this.#head];
  }

  shift(): T {
    const item = this.#items[this.#head++];
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i];
  }
}

// One target's lines, and its overflow: lines dropped and not yet reported, whether the
// overflow's first report was made, whether a report is queued.
interface Lane {
  readonly target: string | undefined;
  readonly lines: Fifo<string>;
  unreported: number;
  firstReportMade: boolean;
  reportQueued: boolean;
}

/**
 * Paces a transport's outgoing lines (a token bucket: `burst` at once, then
 * `linesPerSecond`), fairly across targets, with bounded, visible queues. One Pacer per
 * connection: a network's flood limit counts every line the connection sends — OTR wire
 * messages of every channel, and the app's own commands — so this sits where they all meet,
 * in front of the socket, not inside one channel.
 *
 * Fairness: the lines of each target wait in their own lane (the lines pushed with no target
 * — the connection's own commands — in one more), and the lanes with lines waiting take turns
 * in a rotation, one line each per turn. A round is one pass of that rotation: each lane with
 * lines waiting sends its oldest line, in the order the lanes joined. A lane joins the end of
 * the rotation when it gets a line while not in it, and leaves at the turn that sends its last
 * line. So a target's lines go in the order they were pushed, and one target's flood delays
 * another target's line by at most one round: ahead of a line pushed for a target with nothing
 * waiting there is at most one line of every other lane, however many that lane holds (and
 * ahead of a target's k-th waiting line, at most k of every other lane).
 *
 * Bounds: a line pushed when `maxDepthPerTarget` lines wait for its target, or `maxDepth` in
 * all, is dropped — that newest line of that target, never another target's — and counted in
 * {@link Pacer.dropped}, never thrown. Drops are reported by `'drop'` events ({@link PacerDrop})
 * per overflow: a target's overflow starts with its first dropped line and ends when its lane
 * leaves the rotation (a target that had nothing waiting when its line was dropped joins the
 * rotation all the same, for a turn that sends nothing). An overflow makes at most two
 * events: one on the next turn of the event loop after its first drop, with the lines dropped
 * by then, and, if more were dropped afterwards, one when it ends, with those. So the events'
 * `dropped` of a target add up to its dropped lines, and the number of events is bounded by
 * the turns the targets get, not by the lines pushed. Emits `'drain'` when the queue empties
 * ({@link PacerEvents}).
 */
export class Pacer extends EventEmitter<PacerEvents> {
  /** Lines let through per second, on average. */
  readonly linesPerSecond: number;
  /** Lines that may go at once after a quiet spell. */
  readonly burst: number;
  /** At most this many lines wait, all targets together. */
  readonly maxDepth: number;
  /** At most this many lines wait for one target (the lines pushed with no target are one). */
  readonly maxDepthPerTarget: number;
  readonly #send: (line: string) => void;
  // A lane exists while it is in the rotation: from its first line (or dropped line) to its
  // turn with nothing left to send.
  #lanes = new Map<string | undefined, Lane>();
  #rotation = new Fifo<Lane>();
  #reports: Lane[] = [];
  #reportTimer: NodeJS.Immediate | undefined;
  #depth = 0;
  #tokens: number;
  #refilledAt = performance.now();
  #timer: NodeJS.Timeout | undefined;
  #pumping = false;
  #closed = false;
  #sent = 0;
  #dropped = 0;

  /**
   * Throws `ERR_OTR_INVALID_ARGUMENT` for a rate that is not a positive number, a missing
   * `send`, or a burst or bound that is not a positive integer.
   */
  constructor(options: PacerOptions) {
    super();
    if (options === null || typeof options !== 'object') throw invalid(`new Pacer() options must be an object, got ${describe(options)}`);
    rejectUnknownOptions('new Pacer()', options, PACER_OPTION_NAMES);
    const rate = options.linesPerSecond;
    if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0) throw invalid(`linesPerSecond must be a positive number, got ${describe(rate)}`);
    if (typeof options.send !== 'function') throw invalid(`send must be a function: it writes one line to the transport; got ${describe(options.send)}`);
    this.linesPerSecond = rate;
    this.burst = requireInteger('burst', options.burst ?? 1, 1, 1_000_000);
    this.maxDepth = requireInteger('maxDepth', options.maxDepth ?? DEFAULT_MAX_DEPTH, 1, MAX_BOUND);
    this.maxDepthPerTarget = requireInteger('maxDepthPerTarget', options.maxDepthPerTarget ?? DEFAULT_MAX_DEPTH_PER_TARGET, 1, MAX_BOUND);
    this.#send = options.send;
    this.#tokens = this.burst;
  }

  /** Lines waiting to be sent, all targets together. */
  get depth(): number {
    return this.#depth;
  }

  /** Lines waiting to be sent for one target (no argument: the lines pushed with none). */
  depthOf(target?: string): number {
    return this.#lanes.get(target)?.lines.size ?? 0;
  }

  /** Lines sent so far. */
  get sent(): number {
    return this.#sent;
  }

  /** Lines dropped so far, over `maxDepth` or `maxDepthPerTarget`. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Queues a line for `target` (a contact's name; none for the connection's own commands); it
   * is sent now if the bucket allows and no other lane's turn comes first. Returns false when
   * the line was dropped over a bound (counted, and reported by a `'drop'` event). Throws
   * `ERR_OTR_INVALID_ARGUMENT` once the pacer is closed, or for a line or target that is not
   * a string.
   */
  push(line: string, target?: string): boolean {
    if (this.#closed) throw invalid('this pacer is closed: make a new one for a new connection');
    if (typeof line !== 'string') throw invalid(`line must be a string, got ${describe(line)}`);
    if (target !== undefined && typeof target !== 'string') throw invalid(`target must be a string (a contact's name) or left out, got ${describe(target)}`);
    let lane = this.#lanes.get(target);
    const full = this.#depth >= this.maxDepth || (lane !== undefined && lane.lines.size >= this.maxDepthPerTarget);
    if (!lane) {
      lane = { target, lines: new Fifo<string>(), unreported: 0, firstReportMade: false, reportQueued: false };
      this.#lanes.set(target, lane);
      this.#rotation.push(lane);
    }
    if (full) {
      this.#dropped++;
      lane.unreported++;
      if (!lane.firstReportMade) this.#queueReport(lane);
      return false;
    }
    lane.lines.push(line);
    this.#depth++;
    this.#pump();
    return true;
  }

  /**
   * Resolves once every queued line has been sent (at once when none waits); never rejects.
   * close() does not drain: a drained() made before a close() that left lines unsent stays
   * pending (close() returns those lines).
   */
  drained(): Promise<void> {
    if (this.#depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.once('drain', resolve));
  }

  /**
   * Stops sending; returns the lines still queued (not sent), in the order they would have
   * been sent. Drops not yet reported are reported (`'drop'`) before it returns.
   */
  close(): string[] {
    if (this.#closed) return [];
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const left: string[] = [];
    while (this.#rotation.size > 0) {
      const lane = this.#rotation.shift();
      if (lane.lines.size > 0) {
        left.push(lane.lines.shift());
        this.#rotation.push(lane);
      } else {
        this.#retire(lane);
      }
    }
    this.#depth = 0;
    this.#report();
    return left;
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#refilledAt) * this.linesPerSecond) / 1000);
    this.#refilledAt = now;
  }

  // A lane leaves the rotation: its overflow, if any, ends and what it dropped since its
  // first report is reported.
  #retire(lane: Lane): void {
    this.#lanes.delete(lane.target);
    if (lane.unreported > 0) this.#queueReport(lane);
  }

  #queueReport(lane: Lane): void {
    if (lane.reportQueued) return;
    lane.reportQueued = true;
    this.#reports.push(lane);
    if (!this.#reportTimer && !this.#closed) this.#reportTimer = setImmediate(() => this.#report());
  }

  #report(): void {
    if (this.#reportTimer) clearImmediate(this.#reportTimer);
    this.#reportTimer = undefined;
    const reports = this.#reports;
    this.#reports = [];
    for (const lane of reports) {
      const dropped = lane.unreported;
      lane.unreported = 0;
      lane.firstReportMade = true;
      lane.reportQueued = false;
      if (dropped > 0) this.emit('drop', { target: lane.target, dropped });
    }
  }

  #pump(): void {
    // A send() that pushes is served by the loop already running.
    if (this.#timer || this.#closed || this.#pumping) return;
    this.#refill();
    this.#pumping = true;
    let done = false;
    try {
      while (this.#rotation.size > 0) {
        const lane = this.#rotation.peek();
        let line: string | undefined;
        if (lane.lines.size > 0) {
          if (this.#tokens < 1) break;
          this.#tokens -= 1;
          line = lane.lines.shift();
        }
        this.#rotation.shift();
        if (lane.lines.size > 0) this.#rotation.push(lane);
        else this.#retire(lane);
        if (line === undefined) continue;
        this.#depth--;
        this.#sent++;
        this.#send(line);
        if (this.#closed) return;
      }
      done = true;
    } finally {
      this.#pumping = false;
      // A send() that threw: what is left still goes, the error reaches its caller.
      if (!done) this.#wake();
    }
    if (this.#depth === 0) {
      this.emit('drain');
      return;
    }
    this.#wake();
  }

  #wake(): void {
    if (this.#timer || this.#closed || this.#rotation.size === 0) return;
    // setTimeout takes at most 2^31 - 1 ms (beyond, it waits 1 ms): a very slow rate would spin.
    const wait = Math.min(Math.ceil(((1 - this.#tokens) * 1000) / this.linesPerSecond), MAX_TIMEOUT_MS);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, wait);
  }
}
