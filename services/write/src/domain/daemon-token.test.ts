import { describe, expect, it } from 'vitest';
import { hashDaemonToken } from '@titanbot/service-kit/daemon-token';
import { DaemonToken } from './daemon-token.js';

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
