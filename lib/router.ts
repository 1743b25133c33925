// A router: a bridge's traffic by contact name. It reaches its account through RouterOwner and
// the OTR instance through RouterContext.
import { channelSettings, type Channel, type ChannelOptions } from './channel';
import type { Contact } from './contact';
import { requireName } from './validate';

/** @internal What a router asks of its account (the Account implements it). */
export interface RouterOwner {
  readonly protocol: string;
  findContact(name: string): Contact | undefined;
  contacts(): Contact[];
  _routedChannel(name: string, options: ChannelOptions, waited: boolean): Channel;
  _nameBusy(name: string): boolean;
  _whenFree<T>(names: string[], operation: () => Promise<T>): Promise<T>;
}

/** @internal What a router asks of the OTR instance (the instance's internals implement it). */
export interface RouterContext {
  /** Throws ERR_OTR_CLOSED once otr.close() was called. */
  ensureOpen(): void;
}

/**
 * Routes a bridge's traffic by contact name. Everything is synchronous up to the library's
 * queue: a contact and its channel are created on first use, and the call is queued right
 * away, so messages reach libotr in the order they were handed in — no promise cache needed.
 */
export class Router {
  readonly #owner: RouterOwner;
  readonly #context: RouterContext;
  readonly #options: ChannelOptions;

  /** @internal The options are checked now, not when the first channel opens. */
  constructor(owner: RouterOwner, context: RouterContext, options: ChannelOptions) {
    channelSettings(options, owner.protocol, 'account.router()');
    // Published as `account`, which account.ts declares (an Account): here it is only the owner.
    Object.assign(this, { account: owner });
    this.#owner = owner;
    this.#context = context;
    this.#options = { ...options };
  }

  /**
   * The contact's channel, opened with the router's options if it has none yet. Throws
   * ERR_OTR_RENAMING while a rename to or from `name` is on its way (which contact the name
   * means is known once it settles).
   */
  channel(name: string): Channel {
    return this.#owner._routedChannel(name, this.#options, false);
  }

  /**
   * Hands in what `name` sent; messages for the user go to onRead. While a rename to or from
   * `name` is on its way, waits for it (in order with the name's other calls). Resolves as
   * {@link Channel.read} does, whatever the contact sent; rejects only for the caller's
   * mistakes: a bad name or text, the channel refused (no lease), ERR_OTR_CLOSED once the
   * OTR is closed — so a bridge still reading its transport at shutdown must catch it.
   */
  read(name: string, text: string): Promise<void> {
    return this.#route(name, (channel) => channel.read(text));
  }

  /**
   * Sends `text` to `name` (encrypted when the channel is, per its policy otherwise); waits as
   * read() does. Resolves as {@link Channel.write} does: once handed to onWrite or queued
   * until the channel is encrypted; rejects as read() does.
   */
  write(name: string, text: string): Promise<void> {
    return this.#route(name, (channel) => channel.write(text));
  }

  #route(name: string, call: (channel: Channel) => Promise<void>): Promise<void> {
    const now = (): Promise<void> => {
      let channel: Channel;
      try {
        channel = this.#owner._routedChannel(name, this.#options, true);
      } catch (error) {
        return Promise.reject(error);
      }
      return call(channel);
    };
    try {
      return this.#owner._nameBusy(name) ? this.#owner._whenFree([name], now) : now();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * A nick change: `from`'s contact, channel, sessions and trust continue as `to` (see
   * Contact.rename: it rejects with ERR_OTR_CONTACT_EXISTS when `to` belongs to a contact with
   * something to lose). Resolves at once when nobody spoke under `from`. A rename of a name a
   * rename on its way is about to give (`NICK a b` then `NICK b c`) waits for that one.
   * Resolves once the contact is known under `to` (see Contact.rename).
   */
  rename(from: string, to: string): Promise<void> {
    try {
      requireName('from', from);
      requireName('to', to);
      this.#context.ensureOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    const renameNow = (): Promise<void> => {
      const contact: Contact | undefined = this.#owner.findContact(from);
      return contact ? contact.rename(to) : Promise.resolve();
    };
    if (from === to || !(this.#owner._nameBusy(from) || this.#owner._nameBusy(to))) return renameNow();
    return this.#owner._whenFree([from, to], renameNow);
  }

  /** The channels opened so far, by any means, for this account. */
  channels(): Channel[] {
    return this.#owner.contacts().flatMap((contact) => (contact.existingChannel ? [contact.existingChannel] : []));
  }
}
