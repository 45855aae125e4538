/**
 * The clock tests hand to the services instead of sleeping: `now()` is the real time plus every
 * `advance`, so time-stamps stay realistic while expiries can be reached at once; `monotonic()`
 * moves only by `advance`, so rate limits and log throttles refill exactly when a test says.
 */
export class TestClock {
  private offsetMs = 0;
  private readonly monotonicBase = performance.now();

  /** Milliseconds since the epoch. */
  readonly now = (): number => Date.now() + this.offsetMs;
  readonly date = (): Date => new Date(this.now());
  /** Milliseconds, frozen between advances. */
  readonly monotonic = (): number => this.monotonicBase + this.offsetMs;

  /** Moves both clocks forward by `ms` (>= 0). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError('a clock only moves forward');
    this.offsetMs += ms;
  }
}
