// Without onTimer, one timer per OTR instance drives libotr's poll, through one of its open
// channels. It never keeps the process alive, and it holds the instance only weakly.
import type { Channel } from '../channel';

export class PollTimer {
  readonly #ping: (channel: Channel) => void;
  #timer: NodeJS.Timeout | undefined;
  #channel: Channel | undefined;

  /** `ping` runs libotr's poll through the channel. */
  constructor(ping: (channel: Channel) => void) {
    this.#ping = ping;
  }

  /** What libotr asks for: a poll every `seconds` (0: none), here through `channel`. */
  set(seconds: number, channel: Channel | undefined): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#channel = seconds > 0 ? channel : undefined;
    if (seconds <= 0 || !channel) return;
    const self = new WeakRef(this);
    this.#timer = setInterval(() => self.deref()?.poll(), seconds * 1000);
    this.#timer.unref();
  }

  /** The channel closed: the poll goes on through `next` (another open channel, if any). */
  channelClosed(channel: Channel, next: Channel | undefined): void {
    if (this.#channel === channel) this.#channel = next !== channel ? next : undefined;
  }

  /** The channel's id is forgotten: it can no longer carry the poll. */
  channelGone(channel: Channel): void {
    if (this.#channel === channel) this.#channel = undefined;
  }

  poll(): void {
    const channel = this.#channel;
    if (channel) this.#ping(channel);
  }
}
