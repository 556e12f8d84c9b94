// The loop of the app's background workers (webhook delivery, bulk jobs): one round at a time. The next comes at
// once when the last found more work than it could take, after `busyMs` when it found some, and otherwise after
// a wait that starts at `busyMs` and doubles with each idle round up to `idleMs` — soon after work, cheap when
// idle. stop() lets the round under way finish.

/** What a round found: more work than it took (more is waiting), some, or none. */
export type RoundResult = 'more' | 'some' | 'none';

export interface PollTimes {
  /** The longest wait between rounds, when idle. */
  idleMs: number;
  /** The wait after a round that found work, and the first one when idle (idleMs when not given). */
  busyMs?: number;
}

export abstract class PollingWorker {
  #timer: NodeJS.Timeout | null = null;
  #round: Promise<unknown> | null = null;
  #stopping = false;
  readonly #idleMs: number;
  readonly #busyMs: number;
  #nextIdleMs: number;

  protected constructor(
    poll: PollTimes,
    protected readonly onError?: (error: unknown) => void,
  ) {
    this.#idleMs = poll.idleMs;
    this.#busyMs = Math.min(poll.busyMs ?? poll.idleMs, poll.idleMs);
    this.#nextIdleMs = this.#busyMs;
  }

  /** One round of work. */
  protected abstract round(): Promise<RoundResult>;

  /** Whether stop() was called: a long round checks it between items. */
  protected get stopping(): boolean {
    return this.#stopping;
  }

  start() {
    this.#stopping = false;
    this.#schedule(0);
  }

  /** Stops: no new round; the round under way is awaited. */
  async stop() {
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#round;
  }

  /** The wait before the round after one that found `found`. */
  #delayAfter(found: RoundResult): number {
    if (found !== 'none') {
      this.#nextIdleMs = this.#busyMs;
      return found === 'more' ? 0 : this.#busyMs;
    }
    const delay = this.#nextIdleMs;
    this.#nextIdleMs = Math.min(this.#idleMs, delay * 2);
    return delay;
  }

  #schedule(delayMs: number) {
    if (this.#stopping) return;
    this.#timer = setTimeout(() => {
      this.#round = this.round()
        .catch((error: unknown): RoundResult => {
          this.onError?.(error);
          return 'none';
        })
        .then((found) => this.#schedule(this.#delayAfter(found)));
    }, delayMs);
    this.#timer.unref();
  }
}
