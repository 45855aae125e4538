import { describe, expect, it } from 'vitest';
import { nextEmpireTime } from './empire-time.js';

describe('nextEmpireTime', () => {
  const now = new Date('2026-11-21T12:00:00Z'); // a Saturday

  it('answers 03:00 UTC on the date itself when it is a Monday', () => {
    expect(nextEmpireTime(['2026-11-23'], now)?.toISOString()).toBe('2026-11-23T03:00:00.000Z');
  });

  it('moves any other weekday to the following Monday 03:00 UTC', () => {
    expect(nextEmpireTime(['2026-11-24'], now)?.toISOString()).toBe('2026-11-30T03:00:00.000Z');
    expect(nextEmpireTime(['2026-11-29'], now)?.toISOString()).toBe('2026-11-30T03:00:00.000Z');
  });

  it('ignores today and the past and picks the earliest later date', () => {
    const dates = ['2026-11-14', '2026-11-21', '2026-12-05', '2026-11-28'];
    expect(nextEmpireTime(dates, now)?.toISOString()).toBe('2026-11-30T03:00:00.000Z');
  });

  it('is null when no date lies after today', () => {
    expect(nextEmpireTime(['2026-11-21', '2025-01-01'], now)).toBeNull();
  });
});
