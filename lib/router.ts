import type { Account } from './account';
import type { Channel, ChannelOptions } from './channel';
import type { Contact } from './contact';

/**
 * Routes a bridge's traffic by contact name. Everything is synchronous up to the library's
 * queue: a contact and its channel are created on first use, and the call is queued right
 * away, so messages reach libotr in the order they were handed in — no promise cache needed.
 */
export class Router {
  /** The account whose contacts this router serves. */
  readonly account: Account;
  readonly #options: ChannelOptions;

  /** @internal */
  constructor(account: Account, options: ChannelOptions) {
    this.account = account;
    this.#options = { ...options };
  }

  /** The contact's channel, opened with the router's options if it has none yet. */
  channel(name: string): Channel {
    const contact: Contact = this.account._contactNow(name);
    return contact.existingChannel ?? contact.channel(this.#options);
  }

  /** Hands in what `name` sent; messages for the user go to onRead. */
  read(name: string, text: string): Promise<void> {
    let channel: Channel;
    try {
      channel = this.channel(name);
    } catch (error) {
      return Promise.reject(error);
    }
    return channel.read(text);
  }

  /** Sends `text` to `name` (encrypted when the channel is, per its policy otherwise). */
  write(name: string, text: string): Promise<void> {
    let channel: Channel;
    try {
      channel = this.channel(name);
    } catch (error) {
      return Promise.reject(error);
    }
    return channel.write(text);
  }

  /** A nick change: `from`'s contact, channel, sessions and trust continue as `to`. */
  rename(from: string, to: string): Promise<void> {
    let contact: Contact | undefined;
    try {
      contact = this.account.findContact(from);
    } catch (error) {
      return Promise.reject(error);
    }
    return contact ? contact.rename(to) : Promise.resolve();
  }

  /** The channels opened so far, by any means, for this account. */
  channels(): Channel[] {
    return this.account.contacts().flatMap((contact) => (contact.existingChannel ? [contact.existingChannel] : []));
  }
}
