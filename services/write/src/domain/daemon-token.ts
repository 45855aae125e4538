import { generateDaemonToken, hashDaemonToken, SHOWN_PREFIX_CHARS } from '@titanbot/service-kit/daemon-token';

/** What shown prefix a legacy token gets: none of its characters, which the operator chose and we did not. */
export const LEGACY_PREFIX = 'legacy';

/** The least a legacy token must have to be imported: characters, different characters, and estimated bits. */
export const LEGACY_TOKEN_MINIMUM = { chars: 16, distinctChars: 8, bits: 64 } as const;

/**
 * Why a legacy token (as imported: trimmed) is too weak to accept, or undefined when it is strong
 * enough. The original let operators choose any value, and a short one falls to online guessing
 * however the guesses are throttled. The estimate is length × log2 of the alphabet its character
 * classes span (lower case 26, upper case 26, digits 10, anything else 33): 32 hex digits give
 * 165 bits, 16 decimal digits 53. It overrates human choices, so a minimum length and a number of
 * different characters hold too (`aaaa…` has no entropy however long).
 */
export function legacyTokenWeakness(token: string): string | undefined {
  const chars = [...token];
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/];
  const alphabet = [26, 26, 10, 33].reduce((sum, size, i) => sum + (classes[i]!.test(token) ? size : 0), 0);
  const bits = Math.floor(chars.length * Math.log2(Math.max(alphabet, 1)));
  const { chars: minChars, distinctChars, bits: minBits } = LEGACY_TOKEN_MINIMUM;
  if (chars.length < minChars || new Set(chars).size < distinctChars || bits < minBits) {
    return `too weak: at least ${minChars} characters, ${distinctChars} of them different, and about ${minBits} bits are needed (this one: ${chars.length} characters, about ${bits} bits)`;
  }
  return undefined;
}

/**
 * A daemon token acts for one device until it expires, is revoked, or is rotated and its grace
 * ends (rotation shortens `expireTime` to the end of the grace). Only its SHA-256 is stored. A
 * `legacy` token is one of the original system's, imported: accepted on the legacy HTTP API only,
 * never rotated, with an expiry only when the operator gave one.
 */
export class DaemonToken {
  readonly uuid!: string;
  readonly deviceUuid!: string;
  /** Hex SHA-256 of the plaintext. */
  readonly tokenHash!: string;
  /** `tbd_` plus 6 characters: enough to recognise a token, useless to guess it; LEGACY_PREFIX for legacy ones. */
  readonly prefix!: string;
  readonly kind!: 'daemon' | 'legacy';
  readonly createTime!: Date;
  /** Null only for a legacy token imported without an expiry. */
  readonly expireTime!: Date | null;
  readonly revokeTime!: Date | null;
  readonly rotateTime!: Date | null;
  readonly rotatedFromUuid!: string | null;
  readonly version!: number;

  /** Issues a token; returns the plaintext, which is never stored. `ttlMs` in milliseconds. */
  static issue(uuid: string, deviceUuid: string, ttlMs: number, now: Date, rotatedFromUuid: string | null = null): { token: DaemonToken; plaintext: string } {
    const plaintext = generateDaemonToken();
    const token = Object.assign(new DaemonToken(), {
      uuid,
      deviceUuid,
      tokenHash: hashDaemonToken(plaintext),
      prefix: plaintext.slice(0, SHOWN_PREFIX_CHARS),
      kind: 'daemon',
      createTime: now,
      expireTime: new Date(now.getTime() + ttlMs),
      revokeTime: null,
      rotateTime: null,
      rotatedFromUuid,
      version: 1,
    });
    return { token, plaintext };
  }

  /**
   * Imports a token of the original system (its plaintext as the operator gives it) for
   * `deviceUuid`, expiring at `expireTime` or never (null). Only its SHA-256 is kept.
   */
  static importLegacy(uuid: string, deviceUuid: string, plaintext: string, expireTime: Date | null, now: Date): DaemonToken {
    return Object.assign(new DaemonToken(), {
      uuid,
      deviceUuid,
      tokenHash: hashDaemonToken(plaintext),
      prefix: LEGACY_PREFIX,
      kind: 'legacy',
      createTime: now,
      expireTime,
      revokeTime: null,
      rotateTime: null,
      rotatedFromUuid: null,
      version: 1,
    });
  }

  /** Whether the token authenticates at `now`. */
  isUsable(now: Date): boolean {
    return this.revokeTime === null && (this.expireTime === null || now < this.expireTime);
  }

  /** Idempotent: revoking twice keeps the first revocation time. */
  revoke(now: Date): void {
    if (this.revokeTime === null) Object.assign(this, { revokeTime: now });
  }

  /** Marks the token rotated; it stays valid for `graceMs` more (never longer than it had). */
  markRotated(now: Date, graceMs: number): void {
    const graceEnd = new Date(Math.min(this.expireTime?.getTime() ?? Number.POSITIVE_INFINITY, now.getTime() + graceMs));
    Object.assign(this, { rotateTime: now, expireTime: graceEnd });
  }
}

