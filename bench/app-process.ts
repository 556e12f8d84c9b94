// The app under test: the production build (`npm run build`, then `node dist/src/server.js`) on a free
// port, with its resident memory sampled from /proc for the peak; and a real sign-in for a session cookie.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { APP_DB_NAME } from './cpu.js';
import { ROOT, freePort, log, run, stopChild, waitForHttp } from './util.js';

export const DEMO_USER = { email: 'admin@acme.example', password: 'demo-password' };

export async function buildApp(): Promise<number> {
  const started = Date.now();
  await run('npm', ['run', 'build']);
  return Date.now() - started;
}

/** Resident set size of a process, in bytes (Linux /proc), or null when it cannot be read. */
export function rssOf(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Proportional set size of a process and all its children (a PostgreSQL postmaster and its backends),
 * in bytes: shared pages counted once across the tree. Linux /proc; null when it cannot be read.
 */
export function pssOfTree(pid: number): number | null {
  const pids = [pid];
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === pid) pids.push(Number(entry));
      } catch {
        // gone meanwhile
      }
    }
    let total = 0;
    for (const p of pids) {
      const match = /^Pss:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      if (match) total += Number(match[1]) * 1024;
    }
    return total;
  } catch {
    return null;
  }
}

/** Samples a process's RSS every `intervalMs`: the peak since start, and since the last `mark()`. */
export class RssSampler {
  peak = 0;
  windowPeak = 0;
  private timer: NodeJS.Timeout;
  constructor(
    private pid: number,
    intervalMs = 100,
    private measure: (pid: number) => number | null = rssOf,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }
  sample(): void {
    const rss = this.measure(this.pid);
    if (rss === null) return;
    this.peak = Math.max(this.peak, rss);
    this.windowPeak = Math.max(this.windowPeak, rss);
  }
  /** The peak since the previous mark, and start a new window. */
  mark(): number {
    this.sample();
    const peak = this.windowPeak;
    this.windowPeak = 0;
    return peak;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

export interface RunningApp {
  origin: string;
  child: ChildProcess;
  rss: RssSampler;
  startMs: number;
  stop(): Promise<void>;
}

/** `cpuProfDir`: run the app with --cpu-prof, writing its profile there when it stops. */
/** `nodeOptions`: extra flags for the app's node (e.g. --max-old-space-size=128), for experiments. */
export async function startApp(databaseUrl: string, options: { cpuProfDir?: string; nodeOptions?: string[] } = {}): Promise<RunningApp> {
  const port = await freePort();
  const started = Date.now();
  const profiling = options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : [];
  const child = spawn(process.execPath, [...profiling, ...(options.nodeOptions ?? []), 'dist/src/server.js'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      NODE_ENV: 'production',
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      RATE_LIMITS: 'false',
      SEED_DEMO: 'true',
      // The webhook scenario's receiver listens on 127.0.0.1 (bench/webhook-scenario.ts).
      WEBHOOK_ALLOW_PRIVATE: 'true',
      // Names the app's PostgreSQL connections, so the bench can read their backends' CPU time.
      PGAPPNAME: APP_DB_NAME,
      // A fixed secret: the bench must not write a generated one into the working tree's data directory.
      SESSION_SECRET: 'bench-session-secret-not-for-production-0123456789',
    },
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-20_000);
  });
  const origin = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${origin}/healthz`, child);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\n${stderr}`, { cause: error });
  }
  const startMs = Date.now() - started;
  log(`app (pid ${child.pid}) ready at ${origin} in ${startMs} ms`);
  const rss = new RssSampler(child.pid!);
  return {
    origin,
    child,
    rss,
    startMs,
    async stop() {
      rss.stop();
      await stopChild(child);
    },
  };
}

/** Signs in through the real form; returns the `simlink_session=…` cookie pair. */
export async function signIn(origin: string, user = DEMO_USER): Promise<string> {
  const response = await fetch(`${origin}/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ email: user.email, password: user.password }).toString(),
  });
  const cookie = response.headers.getSetCookie().find((c) => c.startsWith('simlink_session='));
  if (response.status !== 303 || !cookie) {
    throw new Error(`sign-in as ${user.email} failed: HTTP ${response.status} ${(await response.text()).slice(0, 300)}`);
  }
  await response.arrayBuffer().catch(() => undefined);
  return cookie.split(';')[0];
}
