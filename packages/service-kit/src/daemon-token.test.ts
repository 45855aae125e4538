import { describe, expect, it } from 'vitest';
import { generateDaemonToken, isWellFormedDaemonToken } from './daemon-token.js';

describe('daemon token format', () => {
  it('is tbd_ + 27 base62 characters + a 6-character checksum that validates', () => {
    const token = generateDaemonToken();
    expect(token).toMatch(/^tbd_[0-9A-Za-z]{33}$/);
    expect(isWellFormedDaemonToken(token)).toBe(true);
  });

  it('rejects a token with one character changed, truncated, or without the prefix', () => {
    const token = generateDaemonToken();
    const flipped = token.slice(0, 10) + (token[10] === 'a' ? 'b' : 'a') + token.slice(11);
    expect(isWellFormedDaemonToken(flipped)).toBe(false);
    expect(isWellFormedDaemonToken(token.slice(0, -1))).toBe(false);
    expect(isWellFormedDaemonToken(`xxx_${token.slice(4)}`)).toBe(false);
  });
});
