/** How long a refused download may be told to wait, at most (ms). */
export const MAX_RETRY_DELAY_MS = 120_000;
/** The window over which refusals and finished downloads are counted (ms). */
const WINDOW_MS = 1_000;

/**
 * The RetryInfo delays of refused downloads (DOWNLOADS_BUSY), paced so that the daemons waiting
 * come back about as fast as downloads finish. A fixed delay had a herd of 20,000 daemons refused
 * 1.3 million times, whose CPU starved the downloads they waited for (`npm run bench -- herd`).
 * Every second the waiting daemons are estimated (each comes back once per mean delay, so
 * refusals per second × mean delay), and the mean delay becomes the time the downloads finishing
 * per second take to serve them all (with none finished, one is counted): at least `baseDelayMs`
 * (DOWNLOADS_RETRY_DELAY), at most MAX_RETRY_DELAY_MS. Each delay is spread from half to one and a
 * half times the mean, so a herd refused together does not return together.
 */
export class RetryPacer {
  private readonly baseDelayMs: number;
  private readonly clock: () => number;
  private readonly random: () => number;
  private meanDelayMs: number;
  private windowStart: number | undefined;
  private refusals = 0;
  private finishes = 0;

  /** `clock`: monotonic ms (the replica's, injectable); `random`: [0, 1), for the jitter. */
  constructor(options: { baseDelayMs: number; clock: () => number; random?: () => number }) {
    this.baseDelayMs = options.baseDelayMs;
    this.clock = options.clock;
    this.random = options.random ?? Math.random;
    this.meanDelayMs = options.baseDelayMs;
  }

  /** A refusal now: the delay (ms) to tell its daemon. */
  refused(): number {
    this.roll();
    this.refusals++;
    return Math.round(this.meanDelayMs * (0.5 + this.random()));
  }

  /** A download finished now. */
  finished(): void {
    this.roll();
    this.finishes++;
  }

  /** Closes the window once it is WINDOW_MS old, and paces the next one by what it saw. */
  private roll(): void {
    const now = this.clock();
    this.windowStart ??= now;
    const elapsedMs = now - this.windowStart;
    if (elapsedMs < WINDOW_MS) return;
    const waiting = (this.refusals / elapsedMs) * this.meanDelayMs;
    // None finished: fewer than one a window are served, so count one (a herd whose first downloads
    // are still running must back off too, or its refusals starve those downloads of CPU).
    const drainMs = (waiting / Math.max(1, this.finishes)) * elapsedMs;
    this.meanDelayMs = Math.min(MAX_RETRY_DELAY_MS, Math.max(this.baseDelayMs, drainMs));
    this.windowStart = now;
    this.refusals = 0;
    this.finishes = 0;
  }
}
