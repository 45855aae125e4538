import { generateDaemonToken, hashDaemonToken, SHOWN_PREFIX_CHARS } from '@titanbot/service-kit/daemon-token';

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

