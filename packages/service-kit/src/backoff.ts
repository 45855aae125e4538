import { setTimeout as delay } from 'node:timers/promises';

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
    return fullJitter(this.attempt++, this.baseMs, this.capMs);
  }

  /** Call after a success: the next failure waits little again. */
  reset(): void {
    this.attempt = 0;
  }
}

/** Full jitter: uniform in [0, min(capMs, baseMs * 2^attempt)] ms. */
export function fullJitter(attempt: number, baseMs: number, capMs: number): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
}

/**
 * Resolves after `ms` milliseconds, or at once (never rejecting) when `signal` aborts.
 * `ref: false` lets the process exit meanwhile.
 */
export async function sleep(ms: number, signal?: AbortSignal, ref = true): Promise<void> {
  await delay(ms, undefined, { ref, ...(signal ? { signal } : {}) }).catch(() => undefined);
}
