import { describe, expect, it } from 'vitest';
import { MAX_RETRY_DELAY_MS, RetryPacer } from './retry-pacer.js';

/** A pacer (base delay 2 s) on a clock the test sets (ms), its jitter's random number fixed. */
function pacerAt(random: number) {
  let now = 0;
  const pacer = new RetryPacer({ baseDelayMs: 2_000, clock: () => now, random: () => random });
  return {
    refused: (at: number): number => ((now = at), pacer.refused()),
    finished: (at: number): void => ((now = at), pacer.finished()),
  };
}

/** `count` events spread over the second after `from` (ms). */
const spread = (from: number, count: number, each: (t: number) => void): void => {
  for (let i = 0; i < count; i++) each(from + (i * 1000) / count);
};

describe('RetryPacer', () => {
  it('tells the base delay, spread from half to one and a half times it, until it has seen a second', () => {
    expect([pacerAt(0).refused(0), pacerAt(0.999).refused(0)]).toEqual([1_000, 2_998]);
  });

  it('paces a herd by how fast it is served: 2,000 waiting daemons served 100 a second wait 20 s; 20,000 the longest delay', () => {
    const pacer = pacerAt(0.5);
    // 2,000 waiting daemons each come back every 2 s: 1,000 refusals in a second; 100 downloads finish.
    spread(0, 1_000, (t) => pacer.refused(t));
    spread(0, 100, (t) => pacer.finished(t));
    expect(pacer.refused(1_000)).toBe(20_000);
    const herd = pacerAt(0.5);
    spread(0, 10_000, (t) => herd.refused(t));
    spread(0, 100, (t) => herd.finished(t));
    expect(herd.refused(1_000)).toBe(MAX_RETRY_DELAY_MS);
  });

  it('comes back to the base delay once refusals stop', () => {
    const pacer = pacerAt(0.5);
    spread(0, 1_000, (t) => pacer.refused(t));
    spread(0, 100, (t) => pacer.finished(t));
    expect(pacer.refused(1_000)).toBe(20_000);
    spread(1_001, 100, (t) => pacer.finished(t));
    expect(pacer.refused(2_100)).toBe(2_000);
  });

  it('counts a second in which nothing finished as one download served: a herd backs off while its first downloads run', () => {
    const pacer = pacerAt(0.5);
    spread(0, 50, (t) => pacer.refused(t));
    // 50 refusals a second at 2 s: 100 waiting, served at most one a second.
    expect(pacer.refused(1_000)).toBe(100_000);
  });
});
