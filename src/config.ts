// Environment → typed, validated configuration. A bad value stops the start with a message naming it.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';

export interface Config {
  port: number;
  host: string;
  /** A real PostgreSQL server; unset → the embedded PostgreSQL server in dataDir/postgres. */
  databaseUrl: string | undefined;
  dataDir: string;
  sessionSecret: string;
  sessionIdleMinutes: number;
  sessionMaxHours: number;
  logLevel: string;
  /** Pretty lines for a person at a terminal, JSON lines for a log collector. */
  logFormat: 'pretty' | 'json';
  seedDemo: boolean;
  /** Shared secret the CRM signs launch tokens with (HS256); unset → /launch is off. */
  crmLaunchSecret: string | undefined;
  /** Origins allowed to frame the app and to receive its postMessage calls. */
  crmOrigins: string[];
  /** The public https:// address when behind a TLS proxy; turns on HSTS and Secure cookies. */
  publicUrl: string | undefined;
  /**
   * Which X-Forwarded-* hops to believe (Fastify's `trustProxy`): false (none), a number of proxies in
   * front, or the proxies' addresses / CIDRs. Never `true`: that would believe a client-written chain.
   */
  trustProxy: false | number | string[];
  /** Let a launch link start a session when opened top-level (not in the CRM's iframe). */
  crmLaunchTopLevel: boolean;
  rateLimits: boolean;
  /** How many SIM imports this process runs at once; each holds one of the pool's POOL_SIZE connections. */
  importConcurrency: number;
  /** Webhooks may go to http:// and private addresses (development and tests only). */
  webhookAllowPrivate: boolean;
  /** This process delivers webhook messages (every instance may: they never send the same attempt at once). */
  webhookDelivery: boolean;
  /** This process runs bulk jobs (each job runs on one instance at a time). */
  bulkJobs: boolean;
}

/** Connections in each instance's database pool (db/database.ts). */
export const POOL_SIZE = 10;
/** Imports may hold at most half of the pool: the other half serves every other request meanwhile. */
export const MAX_IMPORT_CONCURRENCY = POOL_SIZE / 2;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}; got "${raw}".`);
  }
  return value;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false; got "${env[name]}".`);
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a valid URL: "${raw}".`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must start with ${protocols.map((p) => `${p}//`).join(' or ')}; got "${raw}".`);
  }
  return raw;
}

function origins(env: Env, name: string): string[] {
  const raw = env[name]?.trim();
  if (!raw) return [];
  return raw.split(/[\s,]+/).map((value) => {
    // A wildcard would let any site (or any subdomain, one taken over is enough) frame SIM Link and hear its messages.
    if (value.includes('*')) {
      throw new ConfigError(
        `${name} cannot hold wildcards ("${value}"): list each CRM origin exactly, like https://crm.example.com, separated by spaces.`,
      );
    }
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw new ConfigError(`${name} must list origins like https://crm.example.com; "${value}" is not one.`);
    }
    if (!['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== value.replace(/\/$/, '')) {
      throw new ConfigError(`${name} must list bare origins (scheme://host[:port], no path); "${value}" is not one.`);
    }
    return parsed.origin;
  });
}

/** Kinds of file system a data directory cannot live on (statfs magic numbers): proc, sysfs, cgroup, cgroup2, devpts. */
const VIRTUAL_FILE_SYSTEMS = new Set([0x9fa0, 0x62656572, 0x27e0eb, 0x63677270, 0x1cd1]);

/** The data directory exists (or is made) and is a writable directory on a real file system. */
function dataDirectory(env: Env): string {
  const dir = resolve(env.DATA_DIR?.trim() || '.data');
  let existing = dir;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  try {
    if (VIRTUAL_FILE_SYSTEMS.has(Number(statfsSync(existing).type))) {
      throw new ConfigError(
        `DATA_DIR ${dir} is on a virtual file system (${existing} is not a disk); set DATA_DIR to a directory on a disk.`,
      );
    }
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw new ConfigError(`DATA_DIR ${dir} is not a directory.`);
    const probe = join(dir, `.write-test-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'EACCES' || code === 'EPERM'
        ? 'is not writable by this user'
        : code === 'EROFS'
          ? 'is on a read-only file system'
          : code === 'ENOTDIR' || code === 'EEXIST'
            ? 'is not a directory (or a file is in its path)'
            : `cannot be used (${code ?? (error as Error).message})`;
    throw new ConfigError(`DATA_DIR ${dir} ${why}; set DATA_DIR to a writable directory.`);
  }
  return dir;
}

/**
 * TRUST_PROXY: unset/false → trust nothing; a hop count (`1`: one proxy in front); or the proxies'
 * addresses and CIDRs (`10.0.0.0/8,127.0.0.1`, also proxy-addr's `loopback`, `linklocal`, `uniquelocal`).
 * `true` is refused: it trusts the whole X-Forwarded-For chain, so its leftmost, client-written address
 * would become the client's address (and a fresh one per request slips past every per-address limit).
 */
function trustProxyOf(env: Env, name: string): false | number | string[] {
  const raw = env[name]?.trim();
  if (!raw || ['false', 'no', 'off', '0'].includes(raw.toLowerCase())) return false;
  if (['true', 'yes', 'on'].includes(raw.toLowerCase())) {
    throw new ConfigError(
      `${name}=${raw} is not accepted: it would trust every address in X-Forwarded-For, including the ones a client writes itself. Set the number of proxies in front of SIM Link (${name}=1 for one) or their addresses (${name}=10.0.0.0/8,127.0.0.1).`,
    );
  }
  if (/^[0-9]+$/.test(raw)) {
    const hops = Number(raw);
    if (hops > 10) throw new ConfigError(`${name} as a number is how many proxies are in front of SIM Link, from 1 to 10; got "${raw}".`);
    return hops;
  }
  return raw
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((entry) => {
      if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return entry;
      const [address, bits, ...rest] = entry.split('/');
      const family = isIP(address);
      const max = family === 4 ? 32 : 128;
      if (family === 0 || rest.length || (bits !== undefined && (!/^[0-9]{1,3}$/.test(bits) || Number(bits) > max))) {
        throw new ConfigError(
          `${name} must be a number of proxies (1) or a list of proxy addresses and CIDRs (10.0.0.0/8,127.0.0.1); "${entry}" is not one.`,
        );
      }
      return entry;
    });
}

/** A session secret from the environment, else one generated once and kept in the data directory. */
function sessionSecret(env: Env, dataDir: string): string {
  const given = env.SESSION_SECRET;
  if (given !== undefined && given !== '') {
    if (given.length < 32) throw new ConfigError('SESSION_SECRET must be at least 32 characters long.');
    return given;
  }
  const file = join(dataDir, 'session-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const generated = randomBytes(32).toString('base64url');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, generated, { mode: 0o600 });
  return generated;
}

function importConcurrency(env: Env): number {
  const raw = env.IMPORT_CONCURRENCY?.trim();
  if (!raw) return 2;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > MAX_IMPORT_CONCURRENCY) {
    throw new ConfigError(
      `IMPORT_CONCURRENCY must be a whole number from 1 to ${MAX_IMPORT_CONCURRENCY}; got "${raw}". Each import holds one of the ${POOL_SIZE} database connections for its whole length, and at least half of them stay for everyone else.`,
    );
  }
  return value;
}

export function loadConfig(env: Env = process.env): Config {
  const logLevel = env.LOG_LEVEL?.trim() || 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}; got "${logLevel}".`);
  }
  const logFormat = env.LOG_FORMAT?.trim().toLowerCase() || (process.stdout.isTTY ? 'pretty' : 'json');
  if (logFormat !== 'pretty' && logFormat !== 'json') {
    throw new ConfigError(`LOG_FORMAT must be pretty or json; got "${env.LOG_FORMAT}".`);
  }
  const dataDir = dataDirectory(env);
  const crmLaunchSecret = env.CRM_LAUNCH_SECRET?.trim() || undefined;
  if (crmLaunchSecret !== undefined && crmLaunchSecret.length < 32) {
    throw new ConfigError('CRM_LAUNCH_SECRET must be at least 32 characters long (HS256 needs a strong shared secret).');
  }
  const publicUrl = url(env, 'PUBLIC_URL', ['http:', 'https:']);
  const trustProxy = trustProxyOf(env, 'TRUST_PROXY');
  // SIM Link itself speaks plain HTTP: an https PUBLIC_URL means a TLS proxy in front, and only a trusted
  // X-Forwarded-Proto tells a request apart as HTTPS — without it Secure session cookies are never sent.
  if (publicUrl?.startsWith('https:') && trustProxy === false) {
    throw new ConfigError(
      'PUBLIC_URL is https:// but TRUST_PROXY is off: set TRUST_PROXY to the number of proxies in front of SIM Link (TRUST_PROXY=1) or their addresses, so it trusts the X-Forwarded-Proto of the TLS proxy (its Secure session cookies need it).',
    );
  }
  return {
    port: integer(env, 'PORT', 3000, 0, 65535),
    host: env.HOST?.trim() || '127.0.0.1',
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    dataDir,
    sessionSecret: sessionSecret(env, dataDir),
    sessionIdleMinutes: integer(env, 'SESSION_IDLE_MINUTES', 60, 1, 60 * 24 * 30),
    sessionMaxHours: integer(env, 'SESSION_MAX_HOURS', 12, 1, 24 * 90),
    logLevel,
    logFormat,
    seedDemo: boolean(env, 'SEED_DEMO', true),
    crmLaunchSecret,
    crmOrigins: origins(env, 'CRM_ORIGINS'),
    publicUrl,
    trustProxy,
    crmLaunchTopLevel: boolean(env, 'CRM_LAUNCH_TOP_LEVEL', false),
    rateLimits: boolean(env, 'RATE_LIMITS', true),
    importConcurrency: importConcurrency(env),
    webhookAllowPrivate: boolean(env, 'WEBHOOK_ALLOW_PRIVATE', false),
    webhookDelivery: boolean(env, 'WEBHOOK_DELIVERY', true),
    bulkJobs: boolean(env, 'BULK_JOBS', true),
  };
}
