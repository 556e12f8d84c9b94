// Configuration is checked at start: a value that would not work, or would quietly weaken SIM Link, is
// refused with a message saying what to set (LOG_FORMAT, DATA_DIR, TRUST_PROXY, CRM_ORIGINS, …).
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, MAX_IMPORT_CONCURRENCY, POOL_SIZE, loadConfig } from '../src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'simlink-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const base = { SESSION_SECRET: 'a-session-secret-that-is-long-enough-0123', DATA_DIR: dir };

describe('LOG_FORMAT', () => {
  it('is pretty or json, and says which when it is neither', () => {
    expect(loadConfig({ ...base, LOG_FORMAT: 'json' }).logFormat).toBe('json');
    expect(loadConfig({ ...base, LOG_FORMAT: 'Pretty' }).logFormat).toBe('pretty');
    expect(() => loadConfig({ ...base, LOG_FORMAT: 'xml' })).toThrow(new ConfigError('LOG_FORMAT must be pretty or json; got "xml".'));
  });

  it('defaults to JSON when the output is not a terminal (a log collector), pretty at a terminal', () => {
    const tty = process.stdout.isTTY;
    try {
      process.stdout.isTTY = false;
      expect(loadConfig(base).logFormat).toBe('json');
      process.stdout.isTTY = true;
      expect(loadConfig(base).logFormat).toBe('pretty');
    } finally {
      process.stdout.isTTY = tty;
    }
  });
});

describe('DATA_DIR', () => {
  it('is made when missing', () => {
    expect(loadConfig({ ...base, DATA_DIR: join(dir, 'new', 'deeper') }).dataDir).toBe(join(dir, 'new', 'deeper'));
  });

  it('refuses a file, a path through a file, and a virtual file system, naming the directory', () => {
    const file = join(dir, 'file');
    writeFileSync(file, '');
    expect(() => loadConfig({ ...base, DATA_DIR: file })).toThrow(`DATA_DIR ${file} is not a directory`);
    expect(() => loadConfig({ ...base, DATA_DIR: join(file, 'x') })).toThrow(
      `DATA_DIR ${join(file, 'x')} is not a directory (or a file is in its path)`,
    );
    expect(() => loadConfig({ ...base, DATA_DIR: '/proc/self/data' })).toThrow('DATA_DIR /proc/self/data is on a virtual file system');
    expect(() => loadConfig({ ...base, DATA_DIR: '/sys/kernel/simlink' })).toThrow(/is on a virtual file system/);
  });

  it('refuses a directory this user cannot write', () => {
    const locked = join(dir, 'locked');
    loadConfig({ ...base, DATA_DIR: locked });
    chmodSync(locked, 0o555);
    if (process.getuid?.() !== 0) {
      expect(() => loadConfig({ ...base, DATA_DIR: locked })).toThrow(`DATA_DIR ${locked} is not writable by this user`);
      return;
    }
    // Root writes anywhere: ask as the unprivileged user `nobody` instead.
    const script = join(dir, 'load.mts');
    writeFileSync(
      script,
      `import { loadConfig } from ${JSON.stringify(fileURLToPath(new URL('../src/config.ts', import.meta.url)))};
try { loadConfig(${JSON.stringify({ ...base, DATA_DIR: locked })}); console.log('accepted'); } catch (e) { console.log(e.message); }`,
    );
    chmodSync(dir, 0o755);
    const out = spawnSync(process.execPath, ['--import', 'tsx', script], {
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
      cwd: fileURLToPath(new URL('..', import.meta.url)),
    });
    expect(out.stdout.trim()).toBe(`DATA_DIR ${locked} is not writable by this user; set DATA_DIR to a writable directory.`);
  });
});

const load = (env: Record<string, string>) => loadConfig({ ...base, ...env });

describe('TRUST_PROXY', () => {
  it('unset, empty or false trusts no proxy (as before)', () => {
    expect(loadConfig(base).trustProxy).toBe(false);
    for (const value of ['', 'false', 'FALSE', 'no', 'off', '0']) expect(load({ TRUST_PROXY: value }).trustProxy).toBe(false);
  });

  it('a number is how many proxies are in front', () => {
    expect(load({ TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(load({ TRUST_PROXY: ' 2 ' }).trustProxy).toBe(2);
    expect(() => load({ TRUST_PROXY: '11' })).toThrow(/from 1 to 10/);
  });

  it('or the proxies’ addresses and CIDRs, IPv4 and IPv6, comma- or space-separated', () => {
    expect(load({ TRUST_PROXY: '10.0.0.0/8,127.0.0.1' }).trustProxy).toEqual(['10.0.0.0/8', '127.0.0.1']);
    expect(load({ TRUST_PROXY: 'fd00::/8 ::1  loopback' }).trustProxy).toEqual(['fd00::/8', '::1', 'loopback']);
    for (const bad of ['10.0.0.0/33', 'proxy.example.com', '10.0.0.1/8/8', '::1/129', '10.0.0/8']) {
      expect(() => load({ TRUST_PROXY: bad }), bad).toThrow(ConfigError);
    }
  });

  it('true is refused, saying what to set instead (it would trust a client-written X-Forwarded-For)', () => {
    for (const value of ['true', 'TRUE', 'yes', 'on']) {
      expect(() => load({ TRUST_PROXY: value })).toThrow(ConfigError);
      expect(() => load({ TRUST_PROXY: value })).toThrow(/TRUST_PROXY=1 .*TRUST_PROXY=10\.0\.0\.0\/8,127\.0\.0\.1/);
    }
  });

  it('an https PUBLIC_URL needs a trusted proxy', () => {
    expect(() => load({ PUBLIC_URL: 'https://simlink.example.com' })).toThrow(/TRUST_PROXY=1/);
    expect(load({ PUBLIC_URL: 'https://simlink.example.com', TRUST_PROXY: '10.0.0.5' }).trustProxy).toEqual(['10.0.0.5']);
  });
});

describe('CRM_ORIGINS', () => {
  it('refuses wildcards, naming the value and what to list instead', () => {
    for (const value of ['*', 'https://*.example.com', 'https://crm.example.com https://*', 'https://crm.*.example.com']) {
      expect(() => load({ CRM_ORIGINS: value }), value).toThrow(ConfigError);
      expect(() => load({ CRM_ORIGINS: value }), value).toThrow(/cannot hold wildcards .*list each CRM origin exactly/);
    }
    expect(load({ CRM_ORIGINS: 'https://crm.example.com' }).crmOrigins).toEqual(['https://crm.example.com']);
  });
});

describe('CRM_LAUNCH_TOP_LEVEL', () => {
  it('is off unless set; true or false only', () => {
    expect(loadConfig(base).crmLaunchTopLevel).toBe(false);
    expect(load({ CRM_LAUNCH_TOP_LEVEL: 'true' }).crmLaunchTopLevel).toBe(true);
    expect(() => load({ CRM_LAUNCH_TOP_LEVEL: 'sometimes' })).toThrow(/CRM_LAUNCH_TOP_LEVEL must be true or false/);
  });
});

describe('IMPORT_CONCURRENCY', () => {
  it('is 2 unless set; at most half of the pool, so the rest serves other requests', () => {
    expect(loadConfig(base).importConcurrency).toBe(2);
    expect(loadConfig({ ...base, IMPORT_CONCURRENCY: '1' }).importConcurrency).toBe(1);
    expect(loadConfig({ ...base, IMPORT_CONCURRENCY: String(MAX_IMPORT_CONCURRENCY) }).importConcurrency).toBe(MAX_IMPORT_CONCURRENCY);
    expect(MAX_IMPORT_CONCURRENCY * 2).toBeLessThanOrEqual(POOL_SIZE);
    for (const value of ['0', String(MAX_IMPORT_CONCURRENCY + 1), '1.5', 'two', '-1']) {
      expect(() => loadConfig({ ...base, IMPORT_CONCURRENCY: value })).toThrow(
        new ConfigError(
          `IMPORT_CONCURRENCY must be a whole number from 1 to ${MAX_IMPORT_CONCURRENCY}; got "${value}". Each import holds one of the ${POOL_SIZE} database connections for its whole length, and at least half of them stay for everyone else.`,
        ),
      );
    }
  });
});
