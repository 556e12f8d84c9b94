// The loop of the app's background workers (webhook delivery, bulk jobs): one round at a time, the next at once
// when the last found more work, else after `pollMs`; stop() lets the round under way finish.

export abstract class PollingWorker {
  #timer: NodeJS.Timeout | null = null;
  #round: Promise<unknown> | null = null;
  #stopping = false;

  protected constructor(
    private readonly pollMs: number,
    private readonly onError?: (error: unknown) => void,
  ) {}

  /** One round of work; true when more is waiting (the next round starts at once). */
  protected abstract round(): Promise<boolean>;

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

  #schedule(delayMs: number) {
    if (this.#stopping) return;
    this.#timer = setTimeout(() => {
      this.#round = this.round()
        .catch((error: unknown) => {
          this.onError?.(error);
          return false;
        })
        .then((more) => this.#schedule(more ? 0 : this.pollMs));
    }, delayMs);
    this.#timer.unref();
  }
}
