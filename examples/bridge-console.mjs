// What the two bridge examples share: their command line (--help, flags over environment
// variables over defaults, a misspelled flag refused), the OTR side of a bridge (one account,
// a router that opens a channel per contact on first use, SMP as a promise) and the console
// that drives it. consoleHelp() lists the console's commands and what it prints; each
// example's --help shows it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { MessageEvent, OTR, SmpEvent } from 'protocol-otr';

/** The console's part of an example's --help; `extra` lists the example's own commands. */
export function consoleHelp(extra = '') {
  return `Commands on standard input (NAME is a contact: a nick, a bare JID):
  /otr NAME                    start OTR with NAME (the query is retried while unanswered)
  /msg NAME TEXT               send TEXT (encrypted once the conversation is)
  /smp NAME SECRET [QUESTION]  verify NAME by SMP (a one-word secret); prints the outcome
  /smp-answer NAME SECRET      answer NAME's SMP request (the rest of the line is the secret)
  /smp-abort NAME              abort the SMP exchange with NAME (theirs or ours)
  /finish NAME                 end the private conversation with NAME
  /forget NAME                 drop the contact NAME: its sessions end without a word, its
                               fingerprints go, verified or not
  /quit                        end every private conversation, then leave (also on end of
                               input, SIGINT, SIGTERM)
${extra ? `${extra}\n` : ''}Output, one line per event:
  keys DIR | fingerprint HEX | connected NAME
  secure NAME Unverified|Private     finished NAME
  read NAME encrypted|plaintext: TEXT
  query NAME secure|unanswered after N
  smp-request NAME[: QUESTION]       smp NAME verified|answered|failed|aborted
  not sent to NAME: WHY              event NAME CODE[: TEXT]
  error [CODE]: WHY                  usage: COMMAND ARGUMENTS
`;
}

/**
 * The command line: `--name value` (or `--name=value`) over the environment variable over
 * the default; `flag: false` marks an option without a value (set by its presence, or by its
 * variable being 1); `fallback: undefined` makes an option required. `--help` (anywhere,
 * whatever else is given) prints `help` and exits 0 before anything else happens.
 */
export function options(spec, help) {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(help);
    process.exit(0);
  }
  const given = {};
  for (let i = 0; i < args.length; i++) {
    const [, key, inline] = /^--([^=]+)(?:=(.*))?$/s.exec(args[i]) ?? [];
    if (!key || !Object.hasOwn(spec, key)) refuse(`unknown option ${args[i]}`);
    if (spec[key].flag === false) {
      if (inline !== undefined) refuse(`--${key} takes no value`);
      given[key] = true;
    } else if (inline !== undefined) given[key] = inline;
    else if (i + 1 < args.length) given[key] = args[++i];
    else refuse(`--${key} needs a value`);
  }
  const out = {};
  for (const [key, { env, fallback, flag = true }] of Object.entries(spec)) {
    const fromEnv = process.env[env] || undefined; // set but empty: unset
    out[key] = flag === false ? (given[key] ?? fromEnv === '1') : (given[key] ?? fromEnv ?? fallback);
    if (out[key] === undefined) refuse(`missing --${key} (or ${env})`);
  }
  return out;
}

function refuse(problem) {
  process.stderr.write(`error: ${problem}; --help lists the options\n`);
  process.exit(2);
}

/**
 * Where an example keeps its keys unless told otherwise: outside any checkout, in the user's
 * data folder ($XDG_DATA_HOME, else ~/.local/share), under protocol-otr/EXAMPLE.
 */
export function defaultKeyDir(example) {
  const xdg = process.env.XDG_DATA_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'protocol-otr', example);
}

export const say = (line) => process.stdout.write(`${line}\n`);

const SMP_OUTCOME = {
  [SmpEvent.SUCCESS]: 'verified',
  [SmpEvent.FAILURE]: 'failed',
  [SmpEvent.ABORT]: 'aborted',
  [SmpEvent.CHEATED]: 'failed (the contact cheated)',
  [SmpEvent.ERROR]: 'failed (an SMP message out of turn)',
};

/**
 * Opens the key files in `keyDir` (created 0700 if needed) and the account, and returns the
 * router and the helpers the console needs. `transport.send(name, wireText)` sends one wire
 * message; `transport.leave()` is called once everything is said.
 */
export async function openBridge({ keyDir, account: accountName, protocol, transport, smpSecret, echo, channelOptions = {} }) {
  say(`keys ${keyDir}`);
  let otr;
  let account;
  try {
    fs.mkdirSync(keyDir, { recursive: true, mode: 0o700 });
    otr = new OTR({
      privkeysFile: path.join(keyDir, 'otr.private_key'),
      contactsFile: path.join(keyDir, 'otr.fingerprints'),
      instanceTagsFile: path.join(keyDir, 'otr.instance_tags'),
    });
    account = await otr.account(accountName, protocol); // generates a key the first time
  } catch (error) {
    // A folder we cannot write, another bridge holding the files' lock, …: one line.
    say(`error${error.code ? ` ${error.code}` : ''}: cannot open the keys in ${keyDir}: ${error.message}`);
    await otr?.close().catch(() => {});
    process.exit(1);
  }
  otr.on('error', (error) => say(`error ${error.code}: ${error.message}`));
  say(`fingerprint ${account.fingerprint}`);
  const smpWaiting = new Map(); // channel → { resolve }: SMP we started
  const smpAsked = new Set(); // channels whose contact waits for our SMP answer
  const held = new Map(); // contact name → why writes to it are refused for now
  const release = (name) => held.delete(name);
  const router = account.router({
    ...channelOptions,
    onWrite: (c, message) => transport.send(c.contact.name, message),
    onRead: (c, message, { encrypted, verified, fingerprint }) => {
      // Who decrypted this message, not the channel's status, says whom it is from: a contact
      // with a verified key can have another session, with a key nobody verified.
      const impostor = encrypted && !verified && c.contact.fingerprints().some((fp) => fp.isVerified);
      say(`read ${c.contact.name} ${encrypted ? 'encrypted' : 'plaintext'}${impostor ? ` (NOT the verified key: ${fingerprint})` : ''}: ${message}`);
      if (echo && encrypted && !impostor) c.write(`echo: ${message}`).catch((e) => say(`error ${e.code}: ${e.message}`));
    },
    onUnverifiedInstance: (c, { fingerprint }) => say(`warning ${c.contact.name}: a session with a key nobody verified (${fingerprint})`),
    onGoneSecure: (c) => {
      release(c.contact.name);
      say(`secure ${c.contact.name} ${c.status}`);
    },
    onGoneInsecure: (c) => say(`finished ${c.contact.name}`),
    onQueryResult: (c, { secure, queries }) => {
      release(c.contact.name);
      say(`query ${c.contact.name} ${secure ? 'secure' : 'unanswered'} after ${queries}`);
    },
    onEvent: (c, code, text) => {
      if (code === MessageEvent.LOG_HEARTBEAT_RCVD || code === MessageEvent.LOG_HEARTBEAT_SENT) return;
      const name = c.contact.name;
      // libotr refuses to write in plaintext into a conversation the contact ended.
      if (code === MessageEvent.CONNECTION_ENDED) say(`not sent to ${name}: ${name} ended the private conversation; /otr ${name} starts a new one`);
      else say(`event ${name} ${MessageEvent[code] ?? code}${text ? `: ${text}` : ''}`);
    },
    // A contact asking us: answer with the configured secret, else the operator answers.
    onSmp: (c, question) => {
      const name = c.contact.name;
      say(`smp-request ${name}${question ? `: ${question}` : ''}`);
      if (smpSecret) return smpSecret;
      smpAsked.add(c);
      say(`answer with /smp-answer ${name} SECRET, or refuse with /smp-abort ${name}`);
      return undefined;
    },
    onSmpEvent: (c, code) => {
      const outcome = SMP_OUTCOME[code];
      if (!outcome) return;
      smpAsked.delete(c);
      const waiting = smpWaiting.get(c);
      if (waiting) {
        smpWaiting.delete(c);
        waiting.resolve(outcome);
      } else {
        say(`smp ${c.contact.name} ${code === SmpEvent.SUCCESS ? 'answered' : outcome}`);
      }
    },
  });

  /** SMP as a promise: resolves with the outcome ('verified', 'failed', 'aborted', …). */
  function verify(name, secret, question) {
    let channel;
    try {
      channel = router.channel(name); // throws for a bad name, or while a rename involves it
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      smpWaiting.set(channel, { resolve });
      channel.smpVerify(secret, question).catch((error) => {
        smpWaiting.delete(channel);
        reject(error);
      });
    });
  }

  /** Answers the contact's SMP request (one the bridge had no secret for). */
  async function answer(name, secret) {
    const channel = router.channel(name);
    if (!smpAsked.has(channel)) throw new Error(`${name} has not asked for SMP`);
    smpAsked.delete(channel);
    await channel.smpRespond(secret);
  }

  /** Aborts SMP with the contact, theirs or ours; the contact is told. */
  async function abort(name) {
    const channel = router.channel(name);
    smpAsked.delete(channel);
    smpWaiting.get(channel)?.resolve('aborted');
    smpWaiting.delete(channel);
    await channel.smpAbort();
  }

  /**
   * Drops the contact: its sessions end without a word (call finish first to tell them), and
   * its fingerprints go, the verified ones too; a user's nick change can take the name then.
   */
  let forgotten = 0;
  async function forget(name) {
    const contact = await account.contact(name);
    // Forgotten under its name, a contact that had a private session would leave the library's
    // tombstone there (later writes to the name refused, never sent in clear), which refuses
    // renames onto it too: it is renamed away first, to a name no user can have.
    await contact.rename(`${name} (forgotten ${++forgotten})`);
    for (const fp of contact.fingerprints()) if (fp.isVerified) await fp.setVerified(false);
    await contact.forget({ unverifiedFingerprints: true });
  }

  /** Writes from the console: refused (and said so) while `hold(name, why)` holds the name. */
  function write(name, text) {
    const why = held.get(name);
    if (why === undefined) return router.write(name, text);
    say(`not sent to ${name}: ${why}`);
    return Promise.resolve();
  }
  /** Refuses the console's writes to `name` until its channel is encrypted or its query ends. */
  const hold = (name, why) => held.set(name, why);

  let leaving;
  async function quit() {
    leaving ??= (async () => {
      // Every encrypted contact is told we are leaving; then the transport says goodbye.
      await otr.close({ endSessions: true });
      await transport.leave();
    })();
    return leaving;
  }

  return { otr, account, router, verify, answer, abort, forget, write, hold, quit };
}

// Each command's arguments; one written NAME... takes the rest of the line as it is.
const COMMANDS = {
  '/otr': ['NAME'],
  '/msg': ['NAME', 'TEXT...'],
  '/smp': ['NAME', 'SECRET', '[QUESTION...]'],
  '/smp-answer': ['NAME', 'SECRET...'],
  '/smp-abort': ['NAME'],
  '/finish': ['NAME'],
  '/forget': ['NAME'],
  '/quit': [],
};

// The words `args` names, the last one taking the rest of the line if it ends in '...'.
function parse(tail, args) {
  const out = [];
  let rest = tail;
  for (const arg of args) {
    if (!rest) break;
    if (arg.endsWith('...') || arg.endsWith('...]')) {
      out.push(rest);
      break;
    }
    const [, word, after] = /^(\S+)\s*(.*)$/s.exec(rest);
    out.push(word);
    rest = after;
  }
  return out;
}

/**
 * Reads commands from standard input until /quit or its end. `extra` adds the transport's
 * own commands: `{ '/nick': { args: ['NEWNICK'], run(newNick) } }`; a handler may return a
 * promise. No command ends the process but /quit: a missing argument prints the command's
 * usage, a refused one an error line.
 */
export function runConsole(bridge, extra = {}) {
  const input = readline.createInterface({ input: process.stdin });
  const fail = (error) => say(`error${error.code ? ` ${error.code}` : ''}: ${error.message}`);
  const commands = {
    '/otr': (name) => bridge.router.channel(name).init(),
    '/msg': (name, text) => bridge.write(name, text),
    '/smp': (name, secret, question) => bridge.verify(name, secret, question).then((outcome) => say(`smp ${name} ${outcome}`)),
    '/smp-answer': (name, secret) => bridge.answer(name, secret),
    '/smp-abort': (name) => bridge.abort(name),
    '/finish': (name) => bridge.router.channel(name).finish(),
    '/forget': (name) => bridge.forget(name).then(() => say(`forgot ${name}`)),
    '/quit': () => input.close(),
  };
  const usage = { ...COMMANDS };
  for (const [command, { args, run }] of Object.entries(extra)) {
    commands[command] = run;
    usage[command] = args;
  }
  input.on('line', (line) => {
    const [, command, tail] = /^\s*(\S*)\s*(.*?)\s*$/s.exec(line);
    if (!command) return;
    const run = commands[command];
    if (!run) return say(`error: unknown command ${command} (${Object.keys(commands).join(' ')})`);
    const args = parse(tail, usage[command]);
    if (args.length < usage[command].filter((a) => !a.startsWith('[')).length) return say(`usage: ${[command, ...usage[command]].join(' ')}`);
    try {
      Promise.resolve(run(...args)).catch(fail);
    } catch (error) {
      fail(error); // router.channel() throws for a bad name, or while a rename involves it
    }
  });
  input.on('close', () => bridge.quit().then(() => process.exit(0), fail));
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => input.close());
}
