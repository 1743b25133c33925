// Real chat servers on loopback for the end-to-end tests: ngircd (IRC) and prosody (XMPP),
// each in a fresh 0700 temp directory, on a free port, listening on 127.0.0.1 only, started
// and stopped by the test. Readiness is the port accepting a connection (tried again after each
// refusal while the server runs), never a sleep. Outside CI a missing server is a skip with the reason;
// in CI (CI=true) it is a failure.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

// The environment for programs the tests start that are not ours (servers, irssi, tmux):
// without the sanitizer runtime the ASan run preloads into node and its children.
export function foreignEnv() {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  delete env.ASAN_OPTIONS;
  delete env.UBSAN_OPTIONS;
  return env;
}

export function serverMissing(binary) {
  const found = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8', env: foreignEnv() });
  if (found.status === 0) return undefined;
  const why = `${binary} is not installed (Debian: apt-get install ${binary}; bash scripts/install.sh installs it)`;
  if (process.env.CI === 'true') throw new Error(`${why}: end-to-end tests never skip in CI`);
  return why;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Resolves once the port accepts a connection. A refused attempt is tried again a few
// milliseconds later, for as long as the server process runs: how long a server takes to start
// depends on the machine and what else runs on it, so no count of attempts is a bound. The
// server exiting first is the failure; a server that runs without ever listening is cut off
// after a minute, only so that the test ends with its log.
const NEVER_LISTENED_MS = 60_000;
const RETRY_MS = 5;
function whenListening(port, child, what) {
  return new Promise((resolve, reject) => {
    let log = '';
    let retry;
    const giveUp = setTimeout(() => {
      clearTimeout(retry);
      child.off('exit', onExit);
      reject(new Error(`${what} never listened on ${port} in ${NEVER_LISTENED_MS / 1000} s:\n${log}`));
    }, NEVER_LISTENED_MS);
    const onExit = (code) => {
      clearTimeout(retry);
      clearTimeout(giveUp);
      reject(new Error(`${what} exited (${code}) before listening:\n${log}`));
    };
    child.once('exit', onExit);
    child.stdout?.on('data', (d) => (log += d));
    child.stderr?.on('data', (d) => (log += d));
    const attempt = () => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        clearTimeout(giveUp);
        child.off('exit', onExit);
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (child.exitCode === null && child.signalCode === null) retry = setTimeout(attempt, RETRY_MS);
      });
    };
    attempt();
  });
}

function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o700);
  return dir;
}

// Every server still running, so a file's after() hook can stop them even when a test timed
// out before its own cleanup (a child left running would keep the test process alive).
const running = new Set();

export async function stopAllServers() {
  await Promise.all([...running].map((stop) => stop()));
}

function track(child, dir) {
  const stop = async () => {
    running.delete(stop);
    await stopChild(child, dir);
  };
  running.add(stop);
  return stop;
}

async function stopChild(child, dir) {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * ngircd in the foreground. `floodPenalties: true` keeps ngircd's default flood protection
 * (about one command per second per client once a short burst is spent; lines beyond that
 * wait in the server); false sets MaxPenaltyTime = 0.
 */
export async function startNgircd({ floodPenalties = false } = {}) {
  const dir = tempDir('otr-ngircd-');
  const port = await freePort();
  const conf = path.join(dir, 'ngircd.conf');
  fs.writeFileSync(
    conf,
    [
      '[Global]',
      '\tName = irc.test.local',
      '\tInfo = OTR e2e test server',
      '\tAdminInfo1 = test',
      '\tAdminInfo2 = test',
      '\tAdminEMail = test@test.local',
      '\tListen = 127.0.0.1',
      `\tPorts = ${port}`,
      '\tMotdPhrase = test',
      '[Limits]',
      '\tMaxConnectionsIP = 0',
      floodPenalties ? '' : '\tMaxPenaltyTime = 0',
      '\tMaxNickLength = 30',
      '[Options]',
      '\tDNS = no',
      '\tIdent = no',
      '\tPAM = no',
      '',
    ].join('\n'),
  );
  const child = spawn('ngircd', ['-n', '-f', conf], { stdio: ['ignore', 'pipe', 'pipe'], env: foreignEnv() });
  const stop = track(child, dir);
  await whenListening(port, child, 'ngircd');
  return { port, host: '127.0.0.1', stop };
}

/**
 * prosody with a config of its own (never without --config), users registered by file.
 * `plainAuth: false` offers no SASL PLAIN over an unencrypted connection (SCRAM only, as a
 * server would); `tls: { certificate, key }` (PEM files) offers STARTTLS with that
 * certificate and requires it before login.
 */
export async function startProsody(users, { plainAuth = true, tls } = {}) {
  const dir = tempDir('otr-prosody-');
  const port = await freePort();
  const data = path.join(dir, 'data');
  fs.mkdirSync(path.join(data, 'localhost', 'accounts'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'certs'));
  for (const [user, password] of Object.entries(users)) {
    fs.writeFileSync(path.join(data, 'localhost', 'accounts', `${user}.dat`), `return {\n\t["password"] = ${JSON.stringify(password)};\n};\n`);
  }
  const conf = path.join(dir, 'prosody.cfg.lua');
  fs.writeFileSync(
    conf,
    [
      'run_as_root = true',
      `pidfile = ${JSON.stringify(path.join(dir, 'prosody.pid'))}`,
      `data_path = ${JSON.stringify(data)}`,
      `certificates = ${JSON.stringify(path.join(dir, 'certs'))}`,
      'interfaces = { "127.0.0.1" }',
      'local_interfaces = { "127.0.0.1" }',
      `c2s_ports = { ${port} }`,
      'c2s_direct_tls_ports = {}',
      's2s_ports = {}',
      'component_ports = {}',
      'http_ports = {}',
      'https_ports = {}',
      `modules_enabled = { "roster", "saslauth", "disco", "ping", "posix"${tls ? ', "tls"' : ''} }`,
      `modules_disabled = { "s2s", ${tls ? '' : '"tls", '}"offline" }`,
      'authentication = "internal_plain"',
      `c2s_require_encryption = ${tls ? 'true' : 'false'}`,
      `allow_unencrypted_plain_auth = ${plainAuth}`,
      tls ? `ssl = { certificate = ${JSON.stringify(tls.certificate)}; key = ${JSON.stringify(tls.key)} }` : '',
      'storage = "internal"',
      'log = { { levels = { min = "warn" }, to = "console" } }',
      'VirtualHost "localhost"',
      '',
    ].join('\n'),
  );
  const child = spawn('prosody', ['-F', '--config', conf], { stdio: ['ignore', 'pipe', 'pipe'], env: foreignEnv() });
  const stop = track(child, dir);
  await whenListening(port, child, 'prosody');
  return { port, host: '127.0.0.1', domain: 'localhost', stop };
}
