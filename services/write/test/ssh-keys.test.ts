/**
 * Device key pairs: every pair the write service makes can be read back, by ssh2 and by the
 * SSH wire format's rule that an ed25519 public key is 32 bytes. ssh2's generator alone gets about
 * 1 pair in 256 wrong (app/ssh-keys.ts), so 2,000 pairs would contain one with a probability of
 * 1 - (255/256)^2000, over 99.9 %.
 */
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { generateSshKeyPair } from '../src/app/ssh-keys.js';

/** The key bytes of an `ssh-ed25519 <base64> comment` line: the blob is string type, string key. */
function publicKeyBytes(line: string): Buffer {
  const blob = Buffer.from(line.split(' ')[1]!, 'base64');
  const typeLength = blob.readUInt32BE(0);
  return blob.subarray(4 + typeLength + 4, 4 + typeLength + 4 + blob.readUInt32BE(4 + typeLength));
}

describe('generateSshKeyPair', () => {
  it('makes only pairs that parse, with 32-byte public keys and the comment asked for', () => {
    for (let i = 0; i < 2_000; i++) {
      const pair = generateSshKeyPair('titanbot7');
      expect(ssh2.utils.parseKey(pair.private)).not.toBeInstanceOf(Error);
      expect(ssh2.utils.parseKey(pair.public)).not.toBeInstanceOf(Error);
      expect(publicKeyBytes(pair.public)).toHaveLength(32);
      expect(pair.public.trim().endsWith(' titanbot7')).toBe(true);
    }
  });
});
