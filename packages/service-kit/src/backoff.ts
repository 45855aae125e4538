/**
 * Capped exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"): attempt n waits a uniform random time in [0, min(capMs, baseMs * 2^n)] ms, so many
 * clients reconnecting after one outage spread out instead of arriving together.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs: number,
    private readonly capMs: number,
  ) {}

  /** The next delay in ms; each call doubles the ceiling up to `capMs`. */
  next(): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.random() * ceiling;
  }

  /** Call after a success: the next failure waits little again. */
  reset(): void {
    this.attempt = 0;
  }
}

/** Resolves after `ms` milliseconds, or at once (without rejecting) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
