/** One key's bucket: mutated in place so a call allocates nothing once the key is known. */
interface Bucket {
  /** Clock reading (ms) at which the bucket holds `burst` tokens again; at or before now = full. */
  fullAtMs: number;
}

export interface RateLimiterOptions {
  /** Tokens added per second (> 0). */
  ratePerSecond: number;
  /** Bucket capacity, and what a key never seen before starts with (integer >= 1). */
  burst: number;
  /** Monotonic clock in ms (default performance.now): a wall clock stepping back would withhold tokens. */
  clock?: () => number;
  /** At most one sweep for idle buckets per this many ms (default 60 s). */
  sweepEveryMs?: number;
}

/** Float error in a clock-time sum (ms); a clock that reads 1e6 ms with a fraction has about 1e-10. */
const ROUNDING_MS = 1e-6;

/**
 * A wait as the whole ms a caller is told: 0 when it is only rounding, else rounded up, the
 * rounding taken off first so that 200 ms plus float error is 200, not 201.
 */
const wholeMs = (waitMs: number): number => (waitMs > ROUNDING_MS ? Math.ceil(waitMs - ROUNDING_MS) : 0);

/**
 * Token buckets by key (a device's uuid, a peer's address): each refills at `ratePerSecond` up to
 * `burst`; a call takes one token, or its cost (log lines). A bucket is kept as the single instant
 * it will be full again (the "theoretical arrival time" form of a token bucket): each token taken
 * pushes that instant one interval (1000 / ratePerSecond ms) later, and a call is refused when the instant would lie more
 * than `burst` intervals ahead. O(1) per call (one Map lookup; one insert the first time a key
 * is seen), no timers. A full bucket is indistinguishable from a new one, so full buckets are
 * dropped by a sweep that runs at most every `sweepEveryMs`, during a call: memory stays bounded
 * by the keys active within `burst` intervals plus one sweep period.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly intervalMs: number;
  private readonly windowMs: number;
  private readonly clock: () => number;
  private readonly sweepEveryMs: number;
  private lastSweepMs: number;

  constructor(options: RateLimiterOptions) {
    if (!(options.ratePerSecond > 0) || !Number.isFinite(options.ratePerSecond)) throw new RangeError('ratePerSecond must be a finite number > 0');
    if (!Number.isInteger(options.burst) || options.burst < 1) throw new RangeError('burst must be an integer >= 1');
    this.intervalMs = 1000 / options.ratePerSecond;
    this.windowMs = options.burst * this.intervalMs;
    this.clock = options.clock ?? (() => performance.now());
    this.sweepEveryMs = options.sweepEveryMs ?? 60_000;
    this.lastSweepMs = this.clock();
  }

  /**
   * Takes `cost` tokens (default 1; a positive integer at most `burst`) from `key`'s bucket.
   * Returns 0 when the call may proceed, else the whole number of ms (>= 1) until `cost` tokens
   * are available; a refused call takes nothing.
   */
  take(key: string, cost = 1): number {
    const now = this.clock();
    if (now - this.lastSweepMs >= this.sweepEveryMs) this.sweep(now);
    const bucket = this.buckets.get(key);
    const fullAtMs = Math.max(bucket?.fullAtMs ?? now, now) + cost * this.intervalMs;
    // Sums of fractional clock readings are not exact: a wait below a nanosecond is rounding, not a refusal.
    const waitMs = wholeMs(fullAtMs - now - this.windowMs);
    if (waitMs > 0) return waitMs;
    if (bucket === undefined) this.buckets.set(key, { fullAtMs });
    else bucket.fullAtMs = fullAtMs;
    return 0;
  }

  /** Like `take(key)` but takes nothing: 0 when one token is available now, else the ms until it is. */
  wait(key: string): number {
    const now = this.clock();
    return wholeMs(Math.max(this.buckets.get(key)?.fullAtMs ?? now, now) + this.intervalMs - now - this.windowMs);
  }

  /** How many buckets are held (keys seen and not yet swept as full): for metrics and tests. */
  get size(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    this.lastSweepMs = now;
    for (const [key, bucket] of this.buckets) {
      if (bucket.fullAtMs <= now) this.buckets.delete(key);
    }
  }
}

/**
 * Admits at most one log line per key per `intervalMs` (ms, monotonic `clock`), counting the
 * lines it holds back. Keys must come from a small fixed set (e.g. failure reasons): entries are
 * never removed.
 */
export class LogThrottle {
  private readonly keys = new Map<string, { lastMs: number; suppressed: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /**
   * Returns the number of lines suppressed for `key` since the last admitted one (>= 0) when a
   * line may be logged now, or -1 when this one is to be suppressed (and is counted).
   */
  admit(key: string): number {
    const now = this.clock();
    const entry = this.keys.get(key);
    if (entry === undefined) {
      this.keys.set(key, { lastMs: now, suppressed: 0 });
      return 0;
    }
    if (now - entry.lastMs < this.intervalMs) {
      entry.suppressed++;
      return -1;
    }
    const suppressed = entry.suppressed;
    entry.lastMs = now;
    entry.suppressed = 0;
    return suppressed;
  }
}
