// Configuration: LOG_FORMAT and DATA_DIR are checked at start like every other setting.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

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
    expect(() => loadConfig({ ...base, DATA_DIR: join(file, 'x') })).toThrow(`DATA_DIR ${join(file, 'x')} is not a directory (or a file is in its path)`);
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
    writeFileSync(script, `import { loadConfig } from ${JSON.stringify(fileURLToPath(new URL('../src/config.ts', import.meta.url)))};
try { loadConfig(${JSON.stringify({ ...base, DATA_DIR: locked })}); console.log('accepted'); } catch (e) { console.log(e.message); }`);
    chmodSync(dir, 0o755);
    const out = spawnSync(process.execPath, ['--import', 'tsx', script], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)) });
    expect(out.stdout.trim()).toBe(`DATA_DIR ${locked} is not writable by this user; set DATA_DIR to a writable directory.`);
  });
});
