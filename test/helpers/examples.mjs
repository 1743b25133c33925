// For the tests of the shipped examples: an example run as a child process (its output lines,
// a way to wait for one, its standard input), and an OTR user built on the library for the
// example to talk to (a contact's client: it keeps its sessions by name and follows no nick
// change, as irssi-otr does). Everything waits for output or events, never for time.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { OTR } from 'protocol-otr';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// Examples still running when a file ends (a test that timed out): killed, so it can exit.
const children = new Set();
export function killExamples() {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
}

/** A folder removed by `removeTempDirs()` (a file's after hook). */
const dirs = new Set();
export function tempDir(prefix = 'otr-example-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}
export function removeTempDirs() {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

/**
 * Runs examples/SCRIPT with `args`; `env` changes the environment (a variable given as
 * undefined is removed), `cwd` defaults to the checkout.
 */
export function runExample(script, args, { env = {}, cwd = ROOT } = {}) {
  const childEnv = { ...process.env, ...env };
  for (const [name, value] of Object.entries(childEnv)) if (value === undefined) delete childEnv[name];
  const child = spawn(process.execPath, [path.join(ROOT, 'examples', script), ...args], {
    cwd,
    env: childEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  const lines = [];
  const waiting = new Set();
  const poke = () => {
    for (const w of [...waiting]) w();
  };
  let partial = '';
  const run = { lines, stderr: '' };
  child.stderr.on('data', (d) => (run.stderr += d));
  child.stdout.on('data', (d) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop();
    for (const line of parts) {
      lines.push(line);
      poke();
    }
  });
  // Resolves with the exit code once the output is all read.
  run.exited = new Promise((resolve) =>
    child.once('close', (code) => {
      if (partial) lines.push(partial);
      children.delete(child);
      resolve(code);
      poke();
    }),
  );
  run.send = (command) => child.stdin.write(`${command}\n`);
  run.closeInput = () => child.stdin.end();
  /** Resolves with the first line (from `after` on) matching `pattern`; rejects if the example ends first. */
  run.waitFor = (pattern, after = 0) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = lines.slice(after).find((l) => pattern.test(l));
        if (found !== undefined) {
          waiting.delete(check);
          resolve(found);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          waiting.delete(check);
          reject(new Error(`${script} exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}:\n${lines.join('\n')}\n${run.stderr}`));
        }
      };
      waiting.add(check);
      check();
    });
  run.kill = () => child.exitCode === null && child.kill('SIGTERM');
  return run;
}

/**
 * A contact's OTR client on the library: `send(to, wireText)` carries its wire text; what
 * arrives is handed to `receive(from, text)`. Its log holds what happened, in order:
 * { kind: 'read'|'secure'|'finished'|'smp'|'event', name, text?, encrypted?, code? }.
 */
export async function otrUser(name, protocol, send) {
  const dir = tempDir('otr-example-user-');
  const otr = new OTR({
    privkeysFile: path.join(dir, 'otr.private_key'),
    contactsFile: path.join(dir, 'otr.fingerprints'),
    instanceTagsFile: path.join(dir, 'otr.instance_tags'),
  });
  const account = await otr.account(name, protocol);
  const log = [];
  const waiting = new Set();
  const note = (entry) => {
    log.push(entry);
    for (const w of [...waiting]) w();
  };
  const router = account.router({
    onWrite: (c, m) => send(c.contact.name, m),
    onRead: (c, text, info) => note({ kind: 'read', name: c.contact.name, text, encrypted: info.encrypted }),
    onGoneSecure: (c) => note({ kind: 'secure', name: c.contact.name }),
    onGoneInsecure: (c) => note({ kind: 'finished', name: c.contact.name }),
    onSmpEvent: (c, code) => note({ kind: 'smp', name: c.contact.name, code }),
    onEvent: (c, code, text) => note({ kind: 'event', name: c.contact.name, code, text }),
  });
  let lastRead = Promise.resolve();
  return {
    otr,
    router,
    log,
    /** Hands in what `from` sent; `read()` resolves once everything handed in so far is read. */
    receive(from, text) {
      lastRead = router.read(from, text).catch((error) => note({ kind: 'error', name: from, error }));
    },
    read: () => lastRead,
    /** Resolves with the first log entry (from `after` on) for which `match(entry)` holds. */
    until(match, after = 0) {
      return new Promise((resolve) => {
        const check = () => {
          const found = log.slice(after).find(match);
          if (!found) return;
          waiting.delete(check);
          resolve(found);
        };
        waiting.add(check);
        check();
      });
    },
  };
}
