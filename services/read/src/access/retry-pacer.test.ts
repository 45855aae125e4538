import { describe, expect, it } from 'vitest';
import { MAX_RETRY_DELAY_MS, RetryPacer } from './retry-pacer.js';

/** Bytes of one download in these tests (the benchmark's file is about this size). */
const FILE = 760_000;

/** A pacer (base delay 2 s) on a clock the test sets (ms), its jitter's random number fixed, serving FILE-byte downloads. */
function pacerAt(random: number) {
  let now = 0;
  const pacer = new RetryPacer({ baseDelayMs: 2_000, clock: () => now, random: () => random });
  pacer.admitted(FILE);
  return {
    refused: (at: number): number => ((now = at), pacer.refused()),
    /** One FILE's worth of chunks sent at `at`. */
    servedFile: (at: number): void => {
      now = at;
      for (let sent = 0; sent < FILE; sent += FILE / 4) pacer.sent(FILE / 4);
    },
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

  it('grows the delay at most fourfold a second toward the time to serve those waiting, and lets it fall at once', () => {
    const pacer = pacerAt(0.5);
    // 1,000 refused in the first second (told 2 s); 100 files go out a second from then on.
    spread(0, 1_000, (t) => pacer.refused(t));
    spread(0, 100, (t) => pacer.servedFile(t));
    // 1,000 waiting at 100 a second is 10 s: first 8 s, four times the mean before; then 10.01 s
    // (the 1,000 and the one just told).
    expect(pacer.refused(1_000)).toBe(8_000);
    spread(1_001, 100, (t) => pacer.servedFile(t));
    expect(pacer.refused(2_000)).toBe(10_010);
    // At 3 s the first 1,000 were due: two daemons wait (the two just told), served in no time.
    spread(2_001, 100, (t) => pacer.servedFile(t));
    expect(pacer.refused(3_000)).toBe(2_000);
  });

  it('paces a herd that keeps coming back by who waits: 2,000 more a second at 100 files a second reaches the longest delay', () => {
    const pacer = pacerAt(0.5);
    const told: number[] = [];
    for (let second = 0; second < 10; second++) {
      const at = second * 1_000;
      told.push(pacer.refused(at));
      spread(at + 0.5, 1_999, (t) => pacer.refused(t));
      spread(at + 0.5, 100, (t) => pacer.servedFile(t));
    }
    // Waiting (2,000 told each second, until due) over 100 a second, at most four times the last delay.
    expect(told).toEqual([2_000, 8_000, 32_000, 40_000, 60_000, 80_000, 100_000, 120_000, MAX_RETRY_DELAY_MS, MAX_RETRY_DELAY_MS]);
  });

  it('knows the rate in a herd\'s first second, before any download has finished: the mean payload of those admitted', () => {
    let now = 0;
    const pacer = new RetryPacer({ baseDelayMs: 2_000, clock: () => now, random: () => 0.5 });
    // 512 downloads admitted at once, each a quarter sent in the first second: 128 files' worth.
    for (let i = 0; i < 512; i++) pacer.admitted(FILE);
    spread(0, 512, (t) => ((now = t), pacer.sent(FILE / 4)));
    // 200 refused in that second, all still waiting: 200 at 128 a second is 1.5625 s, under the base delay.
    spread(0, 200, (t) => ((now = t), pacer.refused()));
    now = 1_000;
    expect(pacer.refused()).toBe(2_000);
    // 300 more in the next second at the same rate: 501 waiting, 3.914 s.
    spread(1_000.5, 128, (t) => ((now = t), pacer.sent(FILE)));
    spread(1_000.5, 300, (t) => ((now = t), pacer.refused()));
    now = 2_000;
    expect(pacer.refused()).toBe(3_914);
  });

  it('does not count a daemon twice: one refused again waits once, for its latest return', () => {
    const pacer = pacerAt(0.5);
    // 100 daemons refused in the first second (told 2 s), refused again when they come back in the
    // third; ten files go out a second throughout.
    spread(0, 100, (t) => pacer.refused(t));
    for (const second of [0, 1_000, 2_000]) spread(second, 10, (t) => pacer.servedFile(t));
    spread(2_000, 100, (t) => pacer.refused(t));
    // 100 waiting (not 200) at ten a second: 10 s (200 would be 20 s).
    expect(pacer.refused(3_000)).toBe(10_000);
  });

  it('keeps the base delay until bytes go out (the export is being built for the herd)', () => {
    const pacer = pacerAt(0.5);
    spread(0, 50, (t) => pacer.refused(t));
    expect(pacer.refused(1_000)).toBe(2_000);
  });

  it('uses the last rate measured through a second in which nothing went out (a stall)', () => {
    const pacer = pacerAt(0.5);
    spread(0, 10, (t) => pacer.servedFile(t));
    expect(pacer.refused(1_000)).toBe(2_000);
    spread(1_000, 30, (t) => pacer.refused(t));
    // Nothing sent in that second: 31 waiting at the ten a second last measured.
    expect(pacer.refused(2_000)).toBe(3_100);
  });
});
