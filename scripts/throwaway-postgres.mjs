// A throwaway PostgreSQL server for the tests, the benchmark and the multi-node example:
// initdb + pg_ctl in a fresh temp dir, listening on a Unix socket in that dir and, when asked,
// on TCP at the given loopback or test-network addresses (never on every interface), trust
// authentication for the one superuser `postgres` from those. restart() is `pg_ctl restart -m
// fast`; stop() shuts it down and removes the dir.
//
// PostgreSQL refuses to run as root, so as root the server runs as uid/gid 65534 (`nobody`;
// .ci/run makes sure that user exists), in a temp dir that user owns. The binaries come from
// PG_BIN, else the newest /usr/lib/postgresql/<version>/bin (Debian's layout).
//
//   import { startPostgres, findPostgres } from './scripts/throwaway-postgres.mjs';
//   const pg = await startPostgres();   // { connection, url, restart(), stop() }
//   const pg = await startPostgres({ tcp: ['127.0.0.1'] });   // also { tcpConnection(host), port }
//   node scripts/throwaway-postgres.mjs  // starts one, prints its connection, stops on Ctrl-C

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const UNPRIVILEGED = 65534;

/** The directory holding initdb and pg_ctl, or undefined (with `why`) when there is none. */
export function findPostgres() {
  const given = process.env.PG_BIN;
  if (given) {
    return fs.existsSync(path.join(given, 'initdb')) ? { bin: given } : { why: `PG_BIN=${given} has no initdb` };
  }
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root)
    ? fs
        .readdirSync(root)
        .filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) return { why: 'PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BIN)' };
  return { bin: path.join(root, versions[0], 'bin') };
}

function run(file, args, options) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { ...options, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

// A TCP port nothing listens on now (the kernel's choice; the server binds it moments later).
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts a server; resolves once it accepts connections. `tcp`: addresses to listen on besides
 * the Unix socket (each must be an address of this host; clients from their /24 are trusted).
 */
export async function startPostgres({ tcp = [] } = {}) {
  const found = findPostgres();
  if (!found.bin) throw new Error(found.why);
  const asRoot = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'protocol-otr-pg-'));
  const data = path.join(dir, 'data');
  const as = asRoot ? { uid: UNPRIVILEGED, gid: UNPRIVILEGED } : {};
  if (asRoot) fs.chownSync(dir, UNPRIVILEGED, UNPRIVILEGED);
  let port;
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', TZ: 'UTC' };
  try {
    await run(path.join(found.bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], { ...as, env, cwd: dir });
    if (tcp.length > 0) {
      const hba = tcp.map((address) => `host all all ${address.replace(/\.\d+$/, '.0')}/24 trust\n`).join('');
      fs.appendFileSync(path.join(data, 'pg_hba.conf'), hba);
    }
    port = tcp.length > 0 ? await freePort() : 5432;
    const settings = [`-k ${dir}`, `-c listen_addresses='${tcp.join(',')}'`, `-p ${port}`, '-c fsync=off', '-c max_connections=400'].join(' ');
    await run(path.join(found.bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'server.log'), '-o', settings, '-w', '-t', '120', 'start'], {
      ...as,
      env,
      cwd: dir,
    });
  } catch (error) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  let stopped;
  return {
    /** For `pg`: host is the socket's directory. */
    connection: { host: dir, port, user: 'postgres', database: 'postgres' },
    /** The same as a connection string. */
    url: `postgresql://postgres@/postgres?host=${encodeURIComponent(dir)}&port=${port}`,
    /** For `pg` over TCP to one of the `tcp` addresses. */
    tcpConnection: (host = tcp[0]) => ({ host, port, user: 'postgres', database: 'postgres' }),
    port,
    dir,
    /** `pg_ctl restart -m fast`: every connection is ended; resolves once the server accepts connections again. */
    restart() {
      return run(path.join(found.bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'server.log'), '-m', 'fast', '-w', '-t', '120', 'restart'], {
        ...as,
        env,
        cwd: dir,
      });
    },
    stop() {
      stopped ??= run(path.join(found.bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop'], { ...as, env, cwd: dir })
        .catch(() => {})
        .finally(() => fs.rmSync(dir, { recursive: true, force: true }));
      return stopped;
    },
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const server = await startPostgres();
  console.log(server.url);
  const stop = () => server.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
