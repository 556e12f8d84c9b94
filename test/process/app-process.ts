// SIM Link as a child process for the process tests: the built server (or `npm start`) with the demo seeded
// and JSON logs, waited for on /readyz, stopped (SIGTERM) after each test; and temporary data directories.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import supertest from 'supertest';
import { expect } from 'vitest';
import { cookieHeader } from '../helpers/cookies.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));
const dirs: string[] = [];
const children: ChildProcess[] = [];

export interface Run {
  child: ChildProcess;
  port: number;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** The server runs from dist/ as `npm start` runs it; builds only when the sources are newer (for beforeAll). */
export function buildIfNeeded() {
  execFileSync(process.execPath, ['scripts/build-if-needed.mjs'], { cwd: root, stdio: 'ignore' });
}

/** A temporary directory, removed by removeTempDirs(). */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'simlink-proc-'));
  dirs.push(dir);
  return dir;
}

/** Starts `node dist/src/server.js` (or `npm start`) with the demo seeded and JSON logs. */
export function run(env: Record<string, string>, command: 'node' | 'npm' = 'node'): Run {
  const port = Number(env.PORT);
  const fullEnv: Record<string, string> = {
    ...(process.env as Record<string, string>),
    HOST: '127.0.0.1',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    RATE_LIMITS: 'false',
    SEED_DEMO: 'true',
    ...env,
  };
  if (!('DATABASE_URL' in env)) delete fullEnv.DATABASE_URL;
  const child =
    command === 'node'
      ? spawn(process.execPath, ['dist/src/server.js'], { cwd: root, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('npm', ['start'], { cwd: root, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, port, url: `http://127.0.0.1:${port}`, output: () => output, exited };
}

/** Waits until the server answers /readyz; fails with its output if it exits first or takes longer than `ms`. */
export async function ready(app: Run, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (app.child.exitCode !== null) throw new Error(`exited (${app.child.exitCode}) before it was ready:\n${app.output()}`);
    try {
      if ((await fetch(`${app.url}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`not ready within ${ms} ms:\n${app.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Signs in as the demo admin; returns the session's cookie. */
export async function signIn(url: string): Promise<string> {
  const res = await supertest(url).post('/sign-in').type('form').send({ email: 'admin@acme.example', password: 'demo-password' });
  expect(res.status).toBe(303);
  return cookieHeader(res);
}

/** SIGTERM to every server still running (for afterEach), each awaited. */
export async function stopChildren() {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
}

/** Removes the temporary directories (for afterAll). */
export function removeTempDirs() {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
