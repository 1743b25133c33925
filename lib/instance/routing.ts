// Whom what the engine delivers concerns: the instance's accounts, contacts and channels by
// the keys and ids the addon names them with; what each effect means to them (an account
// made, a line of the loaded file skipped, an error, a contact's new state, a channel's
// callback); and how each query is answered (a channel's synchronous callback).
import type { Account } from '../account';
import type { Channel } from '../channel';
import type { Contact } from '../contact';
import { fromNative } from '../errors';
import { EffectKind, type Effect, type NativeAccount, type NativeContact, type Query } from '../native-contract';
import type { Store } from '../store/store';

/** What routing needs of the rest of the instance. */
export interface RoutingHost {
  /** Makes the Account of an account the engine reports for the first time. */
  makeAccount(state: NativeAccount): Account;
  /** The engine skipped a line of the fingerprints file, and kept a dated copy of the file. */
  loadSkipped(line: number, reason: string, copy: string): void;
  /** An error no caller waits for. */
  report(error: unknown): void;
  /** The store, told of every contact's state. */
  store(): Store | undefined;
  /** libotr's poll, driven by the instance for a channel without onTimer. */
  setPollTimer(seconds: number, channel: Channel): void;
}

export class Routing {
  /** Accounts with a key, by `${name}\0${protocol}`, in the order they became known. */
  readonly accounts = new Map<string, Account>();
  /** Channels by id, from their opening until the effects of their closing have arrived. */
  readonly channels = new Map<number, Channel>();
  /** Every live Contact by its id (see Contact._id): the addon's states name them so. */
  readonly contacts = new Map<number, Contact>();
  // Contacts in the fingerprints file of an account that has no key yet: shown once it does.
  readonly #contactsWithoutAccount = new Map<string, Map<string, NativeContact>>();
  readonly #host: RoutingHost;

  constructor(host: RoutingHost) {
    this.#host = host;
  }

  /** The Account of an account the engine reports (made at its first report). */
  accountFromNative(state: NativeAccount): Account {
    const key = `${state.name}\0${state.protocol}`;
    let account = this.accounts.get(key);
    if (!account) {
      account = this.#host.makeAccount(state);
      this.accounts.set(key, account);
      for (const contact of this.#contactsWithoutAccount.get(key)?.values() ?? []) {
        account._contactFromNative(contact.username)._update(contact);
      }
      this.#contactsWithoutAccount.delete(key);
    } else {
      account._update(state.fingerprint, state.instag);
    }
    return account;
  }

  /** What one effect means, to whom it concerns. */
  apply(effect: Effect): void {
    if (effect.kind === EffectKind.AccountReady) {
      this.accountFromNative(effect.account);
      return;
    }
    if (effect.kind === EffectKind.LoadSkipped) {
      this.#host.loadSkipped(effect.line, effect.reason, effect.copy);
      return;
    }
    if (effect.kind === EffectKind.Error) {
      this.#host.report(fromNative({ code: effect.code, message: effect.message }));
      return;
    }
    if (effect.kind === EffectKind.ContactState) {
      const { state } = effect;
      const key = `${state.account}\0${state.protocol}`;
      const account = this.accounts.get(key);
      const channel = effect.channel !== 0 ? this.channels.get(effect.channel) : undefined;
      // By the contact's id (or channel), not by name: a name may have changed since.
      const contact = state.contactId !== 0 ? this.contacts.get(state.contactId) : channel?.contact;
      if (contact) {
        // The addon renamed it: JS follows (the rename's promise settles after this).
        if (contact.name !== state.username) contact.account._renamed(contact, state.username);
        contact._update(state);
      } else if (state.contactId !== 0 || channel) {
        // A contact object forgotten since: its state concerns nobody in JS.
      } else if (account) {
        account._contactFromNative(state.username)._update(state);
      } else {
        const waiting = this.#contactsWithoutAccount.get(key) ?? new Map<string, NativeContact>();
        waiting.set(state.username, state);
        this.#contactsWithoutAccount.set(key, waiting);
      }
      this.#host.store()?._contactState(state);
      return;
    }
    const channel = this.channels.get(effect.channel);
    if (!channel) return;
    if (effect.kind === EffectKind.Timer && !channel._options.onTimer) {
      this.#host.setPollTimer(effect.interval, channel);
      return;
    }
    channel._fire(effect);
  }

  /** The answer to one query: the value a libotr call waits for (the channel's callback gives it). */
  answer(query: Query): unknown {
    return this.channels.get(query.channel)?._answer(query);
  }
}
