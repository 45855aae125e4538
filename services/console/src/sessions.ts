import { randomBytes } from 'node:crypto';
import { compactDecrypt, CompactEncrypt } from 'jose';
import { LRUCache } from 'lru-cache';
import type { OperatorRole } from '@titanbot/service-kit/policy';

/** The tokens a session holds for its operator; they never leave the console. */
export interface SessionTokens {
  accessToken: string;
  /** When the access token expires, on the console's clock (ms since the epoch). */
  accessExpiresAt: number;
  refreshToken: string | undefined;
  /** Kept for RP-initiated logout (`id_token_hint`). */
  idToken: string | undefined;
}

/** A signed-in operator, as the console keeps them. */
export interface Session {
  id: string;
  /** The ID token's `sub`. */
  subject: string;
  /** What the console shows for them: the ID token's `name`, else `sub`. */
  name: string;
  /** From the access token, as the write service reads them: what the page offers (the write service decides). */
  roles: OperatorRole[];
  tokens: SessionTokens;
  /** Sign-in and last request, on the console's clock (ms). */
  createdAt: number;
  lastSeenAt: number;
  /** The renewal in flight, so concurrent calls share one refresh-token grant. */
  renewing: Promise<SessionTokens> | undefined;
}

export interface SessionLimits {
  /** A session ends this long after sign-in (ms). */
  maxAgeMs: number;
  /** A session ends after this long without a request (ms). */
  idleTimeoutMs: number;
  /** Sessions kept at once; beyond it the least recently used ends. */
  maxCount: number;
}

/** JWE with the key used directly (`dir`): the console alone seals and opens. */
const ENCRYPTION = { alg: 'dir', enc: 'A256GCM' } as const;

/**
 * Server-side sessions (the BFF pattern: tokens stay here) in one console process's memory, found
 * by an opaque id that travels only inside an encrypted cookie value (JWE, `dir` + A256GCM, with a
 * key made when the process starts). A cookie that does not decrypt, names no session, or names
 * one past SESSION_MAX_AGE or SESSION_IDLE_TIMEOUT finds nothing. Times come from `now`, so tests
 * move the clock instead of waiting.
 */
export class SessionStore {
  private readonly sessions: LRUCache<string, Session>;
  private readonly key = randomBytes(32);

  constructor(
    private readonly limits: SessionLimits,
    private readonly now: () => number,
  ) {
    this.sessions = new LRUCache({ max: limits.maxCount });
  }

  /** Starts a session; returns it and the cookie value that names it. */
  async create(identity: Pick<Session, 'subject' | 'name' | 'roles'>, tokens: SessionTokens): Promise<{ session: Session; cookie: string }> {
    const now = this.now();
    const session: Session = { ...identity, id: randomBytes(32).toString('base64url'), tokens, createdAt: now, lastSeenAt: now, renewing: undefined };
    this.sessions.set(session.id, session);
    return { session, cookie: await this.seal(session.id) };
  }

  /** The live session a cookie value names, marked as seen now; undefined otherwise (and an expired one is ended). */
  async find(cookie: string | undefined): Promise<Session | undefined> {
    const id = cookie ? await this.open(cookie) : undefined;
    const session = id ? this.sessions.get(id) : undefined;
    if (!session) return undefined;
    const now = this.now();
    if (now - session.createdAt >= this.limits.maxAgeMs || now - session.lastSeenAt >= this.limits.idleTimeoutMs) {
      this.sessions.delete(session.id);
      return undefined;
    }
    session.lastSeenAt = now;
    return session;
  }

  /** Ends a session (sign-out, or a refresh token the provider no longer honours). */
  end(session: Session): void {
    this.sessions.delete(session.id);
  }

  /** When a session ends at the latest (ms on the console's clock). */
  expiresAt(session: Session): number {
    return Math.min(session.createdAt + this.limits.maxAgeMs, session.lastSeenAt + this.limits.idleTimeoutMs);
  }

  /** Seals a short value (a session or sign-in id) for a cookie. */
  async seal(value: string): Promise<string> {
    return new CompactEncrypt(new TextEncoder().encode(value)).setProtectedHeader(ENCRYPTION).encrypt(this.key);
  }

  /** What `seal` sealed; undefined for a value this process did not seal or that was altered. */
  async open(sealed: string): Promise<string | undefined> {
    try {
      const { plaintext } = await compactDecrypt(sealed, this.key, { keyManagementAlgorithms: [ENCRYPTION.alg], contentEncryptionAlgorithms: [ENCRYPTION.enc] });
      return new TextDecoder().decode(plaintext);
    } catch {
      return undefined;
    }
  }
}
