import { describe, expect, it } from 'vitest';
import { LogThrottle, RateLimiter } from './rate-limit.js';

/** A clock the test moves by hand (ms). */
function manualClock(start = 1_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms), set: (ms: number) => void (now = ms) };
}

describe('RateLimiter', () => {
  it('grants a full burst at once, then refuses with the delay until one token is back', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 5, burst: 10, clock: clock.now });
    for (let i = 0; i < 10; i++) expect(limiter.take('a'), `call ${i + 1}`).toBe(0);
    // 5 per second: one token every 200 ms.
    expect(limiter.take('a')).toBe(200);
    clock.advance(50);
    expect(limiter.take('a')).toBe(150);
    clock.advance(149);
    expect(limiter.take('a')).toBe(1);
    clock.advance(1);
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBe(200);
  });

  it('grants the whole burst at a fractional clock reading, and names the exact delay (float sums are not exact)', () => {
    // Readings whose sums once made the delay 201 ms.
    for (const start of [1006.579_000_9, 31_270.619_282_940_283, 3_043.922_790_978_758_3]) {
      const clock = manualClock(start);
      const limiter = new RateLimiter({ ratePerSecond: 5, burst: 10, clock: clock.now });
      for (let i = 0; i < 10; i++) expect(limiter.take('a'), `call ${i + 1} at ${start}`).toBe(0);
      expect(limiter.wait('a'), `wait at ${start}`).toBe(200);
      expect(limiter.take('a'), `refusal at ${start}`).toBe(200);
    }
  });

  it('refills at the rate but never above the burst', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 5, burst: 10, clock: clock.now });
    for (let i = 0; i < 10; i++) limiter.take('a');
    clock.advance(1000);
    for (let i = 0; i < 5; i++) expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBeGreaterThan(0);
    // An hour idle still buys only the burst.
    clock.advance(3_600_000);
    for (let i = 0; i < 10; i++) expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBe(200);
  });

  it('charges a cost of several tokens at once, refusing a cost the bucket cannot hold now without taking any', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 100, burst: 1000, clock: clock.now });
    expect(limiter.take('a', 1000)).toBe(0);
    // 100 per second: 10 ms a token, so 500 tokens are back after 5 s.
    expect(limiter.take('a', 500)).toBe(5000);
    clock.advance(4_000);
    expect(limiter.take('a', 500)).toBe(1000);
    expect(limiter.take('a', 400)).toBe(0);
    expect(limiter.take('a', 1)).toBe(10);
    // More than the burst is never granted, even to a new key.
    expect(limiter.take('b', 1001)).toBe(10);
    expect(limiter.take('b', 1000)).toBe(0);
  });

  it('tells the wait for one token without taking it', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 5, burst: 2, clock: clock.now });
    expect(limiter.wait('a')).toBe(0);
    expect(limiter.wait('a')).toBe(0);
    expect(limiter.take('a', 2)).toBe(0);
    expect(limiter.wait('a')).toBe(200);
    expect(limiter.wait('a')).toBe(200);
    clock.advance(200);
    expect(limiter.wait('a')).toBe(0);
    expect(limiter.take('a')).toBe(0);
  });

  it('keeps keys apart and does not charge refused calls', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 2, burst: 1, clock: clock.now });
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('b')).toBe(0);
    expect(limiter.take('a')).toBe(500);
    expect(limiter.take('a')).toBe(500);
    clock.advance(500);
    expect(limiter.take('a')).toBe(0);
  });

  it('handles fractional rates', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 0.5, burst: 1, clock: clock.now });
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBe(2000);
    clock.advance(1999);
    expect(limiter.take('a')).toBe(1);
    clock.advance(1);
    expect(limiter.take('a')).toBe(0);
  });

  it('evicts buckets that have refilled to full, at most once per sweep period', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 10, burst: 10, clock: clock.now, sweepEveryMs: 60_000 });
    for (let i = 0; i < 100; i++) limiter.take(`idle-${i}`);
    for (let i = 0; i < 10; i++) limiter.take('busy');
    expect(limiter.size).toBe(101);
    // Full long ago, but no sweep before the period has passed.
    clock.advance(59_999);
    limiter.take('busy');
    expect(limiter.size).toBe(101);
    // The sweep runs in the call after the period and keeps only the drained bucket.
    clock.advance(1);
    limiter.take('busy');
    expect(limiter.size).toBe(1);
    // An evicted key starts again with a full burst: eviction changed nothing it can observe.
    for (let i = 0; i < 10; i++) expect(limiter.take('idle-0')).toBe(0);
    expect(limiter.take('idle-0')).toBe(100);
  });

  it('keeps a bucket that is not yet full at sweep time', () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ ratePerSecond: 1, burst: 100, clock: clock.now, sweepEveryMs: 1000 });
    for (let i = 0; i < 100; i++) limiter.take('slow');
    clock.advance(1000);
    limiter.take('other');
    expect(limiter.size).toBe(2);
  });

  it('rejects a rate <= 0 and a burst that is not an integer >= 1', () => {
    expect(() => new RateLimiter({ ratePerSecond: 0, burst: 1 })).toThrow(RangeError);
    expect(() => new RateLimiter({ ratePerSecond: Number.POSITIVE_INFINITY, burst: 1 })).toThrow(RangeError);
    expect(() => new RateLimiter({ ratePerSecond: 1, burst: 0 })).toThrow(RangeError);
    expect(() => new RateLimiter({ ratePerSecond: 1, burst: 1.5 })).toThrow(RangeError);
  });
});

describe('LogThrottle', () => {
  it('admits one line per key per interval and reports how many it held back', () => {
    const clock = manualClock();
    const throttle = new LogThrottle(1000, clock.now);
    expect(throttle.admit('unknown')).toBe(0);
    expect(throttle.admit('unknown')).toBe(-1);
    expect(throttle.admit('unknown')).toBe(-1);
    expect(throttle.admit('expired')).toBe(0);
    clock.advance(999);
    expect(throttle.admit('unknown')).toBe(-1);
    clock.advance(1);
    expect(throttle.admit('unknown')).toBe(3);
    expect(throttle.admit('unknown')).toBe(-1);
    clock.advance(1000);
    expect(throttle.admit('unknown')).toBe(1);
    expect(throttle.admit('expired')).toBe(0);
  });
});
