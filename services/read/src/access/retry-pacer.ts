/** How long a refused download may be told to wait, at most (ms). */
export const MAX_RETRY_DELAY_MS = 120_000;
/** The window over which bytes sent are counted and the delay is set again (ms). */
const WINDOW_MS = 1_000;

/**
 * The RetryInfo delays of refused downloads (DOWNLOADS_BUSY), paced so that the daemons waiting
 * come back about as fast as they can be served. A fixed delay had a herd of 20,000 daemons refused
 * 1.3 million times, whose CPU starved the downloads they waited for (`npm run bench -- herd`).
 * The pacer knows who is waiting: every refusal is a daemon told to come back at a time it chose,
 * so the daemons waiting now are those told a time still ahead. Every second the mean delay
 * becomes the time the replica takes to serve them all at the rate it is sending bytes (bytes sent
 * per second over the mean payload of the downloads admitted: downloads served per second), at
 * least `baseDelayMs` (DOWNLOADS_RETRY_DELAY), at most MAX_RETRY_DELAY_MS. A second in which
 * nothing was sent (the export being built for the herd's first downloads, a stall) says nothing
 * of the rate: the last rate measured is used, and before any, the delay stays as it is. The mean
 * delay grows at most fourfold from one second to the next: the first seconds in which bytes go
 * out under-measure the rate (transfers are only starting), and a daemon told two minutes on such
 * a measure waits two minutes while slots stand idle (twofold refused a herd of 20,000 39,000
 * times, fourfold 28,000). The first pacer counted waiting daemons as refusals per second × the
 * delay (twice too many for a herd arriving at once) and a second without a finished download as
 * one served: a herd of 2,000 was told 120 s in its first second and took 180 s (`npm run bench --
 * cdn`). Each delay is spread from half to one and a half times the mean, so a herd refused
 * together does not return together.
 */
export class RetryPacer {
  private readonly baseDelayMs: number;
  private readonly clock: () => number;
  private readonly random: () => number;
  private meanDelayMs: number;
  private windowStart: number | undefined;
  private bytesSent = 0;
  /** Bytes and count of the downloads admitted since start: their mean payload. */
  private admittedBytes = 0;
  private admittedCount = 0;
  /** Daemons told to come back, by the second (of the clock) they were told. */
  private readonly returns = new Map<number, number>();
  /** Downloads served per ms in the last window that sent anything; undefined before one has. */
  private servedPerMs: number | undefined;

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
    const delayMs = Math.round(this.meanDelayMs * (0.5 + this.random()));
    const second = Math.floor((this.clock() + delayMs) / 1000);
    this.returns.set(second, (this.returns.get(second) ?? 0) + 1);
    return delayMs;
  }

  /** A download was admitted that will send `payloadBytes` bytes. */
  admitted(payloadBytes: number): void {
    this.admittedBytes += payloadBytes;
    this.admittedCount++;
  }

  /** `bytes` of an admitted download were handed to the transport. */
  sent(bytes: number): void {
    this.roll();
    this.bytesSent += bytes;
  }

  /** Closes the window once it is WINDOW_MS old, and paces the next one by what it saw. */
  private roll(): void {
    const now = this.clock();
    this.windowStart ??= now;
    const elapsedMs = now - this.windowStart;
    if (elapsedMs < WINDOW_MS) return;
    let waiting = 0;
    for (const [second, daemons] of this.returns) {
      if (second * 1000 + 1000 <= now) this.returns.delete(second);
      else waiting += daemons;
    }
    if (this.bytesSent > 0) this.servedPerMs = this.bytesSent / (this.admittedBytes / this.admittedCount) / elapsedMs;
    if (this.servedPerMs !== undefined) {
      const drainMs = Math.min(waiting / this.servedPerMs, 4 * this.meanDelayMs);
      this.meanDelayMs = Math.min(MAX_RETRY_DELAY_MS, Math.max(this.baseDelayMs, drainMs));
    }
    this.windowStart = now;
    this.bytesSent = 0;
  }
}
