import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

const PREFIX = 'tbd_';
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** 27 base62 characters carry 160.8 bits. */
const SECRET_CHARS = 27;
/** 62^6 > 2^32: six base62 characters hold a CRC32. */
const CHECKSUM_CHARS = 6;
const TOKEN_LENGTH = PREFIX.length + SECRET_CHARS + CHECKSUM_CHARS;
const SHOWN_PREFIX_CHARS = PREFIX.length + 6;

/**
 * A daemon token acts for one device until it expires, is revoked, or is rotated and its grace
 * ends (rotation shortens `expireTime` to the end of the grace). Only its SHA-256 is stored.
 */
export class DaemonToken {
  readonly uuid!: string;
  readonly deviceUuid!: string;
  /** Hex SHA-256 of the plaintext. */
  readonly tokenHash!: string;
  /** `tbd_` plus 6 characters: enough to recognise a token, useless to guess it. */
  readonly prefix!: string;
  readonly createTime!: Date;
  readonly expireTime!: Date;
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
      createTime: now,
      expireTime: new Date(now.getTime() + ttlMs),
      revokeTime: null,
      rotateTime: null,
      rotatedFromUuid,
      version: 1,
    });
    return { token, plaintext };
  }

  /** Whether the token authenticates at `now`. */
  isUsable(now: Date): boolean {
    return this.revokeTime === null && now < this.expireTime;
  }

  /** Idempotent: revoking twice keeps the first revocation time. */
  revoke(now: Date): void {
    if (this.revokeTime === null) Object.assign(this, { revokeTime: now });
  }

  /** Marks the token rotated; it stays valid for `graceMs` more (never longer than it had). */
  markRotated(now: Date, graceMs: number): void {
    const graceEnd = new Date(Math.min(this.expireTime.getTime(), now.getTime() + graceMs));
    Object.assign(this, { rotateTime: now, expireTime: graceEnd });
  }
}

/** `tbd_` + 27 random base62 characters + 6-character base62 CRC32 of what precedes it. */
export function generateDaemonToken(): string {
  let secret = '';
  while (secret.length < SECRET_CHARS) {
    for (const byte of randomBytes(SECRET_CHARS * 2)) {
      // 248 = 62 * 4: rejecting larger bytes keeps every character uniformly likely.
      if (byte < 248 && secret.length < SECRET_CHARS) secret += ALPHABET[byte % 62];
    }
  }
  const body = PREFIX + secret;
  return body + checksum(body);
}

/** Whether `token` has the daemon-token shape and a correct checksum: no lookup needed to reject. */
export function isWellFormedDaemonToken(token: string): boolean {
  if (token.length !== TOKEN_LENGTH || !token.startsWith(PREFIX)) return false;
  const body = token.slice(0, -CHECKSUM_CHARS);
  return checksum(body) === token.slice(-CHECKSUM_CHARS);
}

/** Hex SHA-256, the only form in which tokens are stored and looked up. */
export const hashDaemonToken = (token: string): string => createHash('sha256').update(token).digest('hex');

function checksum(body: string): string {
  let n = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_CHARS; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}
