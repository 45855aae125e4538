import { describe, expect, it } from 'vitest';
import { hashDaemonToken } from '@titanbot/service-kit/daemon-token';
import { DaemonToken, legacyTokenWeakness } from './daemon-token.js';

describe('DaemonToken', () => {
  it('stores only the hash and a short prefix, never the plaintext', () => {
    const now = new Date('2026-11-21T00:00:00Z');
    const { token, plaintext } = DaemonToken.issue('t1', 'd1', 3_600_000, now);
    expect(token.tokenHash).toBe(hashDaemonToken(plaintext));
    expect(Object.values(token)).not.toContain(plaintext);
    expect(plaintext.startsWith(token.prefix)).toBe(true);
    expect(token.expireTime?.toISOString()).toBe('2026-11-21T01:00:00.000Z');
  });

  it('stays usable for the grace after rotation, never past its own expiry', () => {
    const now = new Date('2026-11-21T00:00:00Z');
    const { token } = DaemonToken.issue('t1', 'd1', 3_600_000, now);
    token.markRotated(now, 600_000);
    expect(token.isUsable(new Date(now.getTime() + 599_999))).toBe(true);
    expect(token.isUsable(new Date(now.getTime() + 600_000))).toBe(false);
    const { token: old } = DaemonToken.issue('t2', 'd1', 60_000, now);
    old.markRotated(now, 600_000);
    expect(old.expireTime?.getTime()).toBe(now.getTime() + 60_000);
  });
});

describe('legacyTokenWeakness', () => {
  it.each([
    ['a random hex token', 'c6b1f0e29a7d4c58b3e1a90f2d7c6e41', undefined],
    ['a uuid', '3f2c0b5e-8a1d-4c2e-9f00-1b2c3d4e5f60', undefined],
    ['a sentence of 24 characters', 'Original token for dev 7', undefined],
    ['5 characters', 'short', /5 characters/],
    ['16 digits (53 bits)', '1234567890123456', /about 53 bits/],
    ['one character repeated', 'a'.repeat(40), /8 of them different/],
  ])('%s', (_what, token, refused) => {
    const weakness = legacyTokenWeakness(token);
    if (refused === undefined) expect(weakness).toBeUndefined();
    else expect(weakness).toMatch(refused);
  });
});
