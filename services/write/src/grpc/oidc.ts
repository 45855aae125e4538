import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';

type RemoteJWKSet = ReturnType<typeof createRemoteJWKSet>;
import { operatorRoles, type OperatorRole } from '@titanbot/service-kit/policy';
import { DomainError } from '../domain/errors.js';

/** Where operators' access tokens come from and what they must say (OIDC_* settings). */
export interface OidcSettings {
  /** The OpenID Provider's issuer URL; its discovery document names the JWKS. */
  issuer: string;
  /** The `aud` an access token must carry for this API. */
  audience: string;
  /** The claim holding role names (a list, or a space-separated string). */
  rolesClaim: string;
}

/** Asymmetric algorithms only: never `none`, never an HMAC keyed with a public JWKS. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
/** Clock skew allowed between us and the issuer on `exp`, `nbf` and `iat` (seconds). */
const CLOCK_TOLERANCE_S = 30;

/** An operator as an access token names them. */
export interface Operator {
  subject: string;
  clientId: string;
  roles: OperatorRole[];
}

/** How long fetched keys are used before they are fetched again (ms). */
const KEYS_MAX_AGE_MS = 600_000;
/** An unknown `kid` refetches the keys at most once per this long (ms), so forged kids cannot make us hammer the issuer. */
const UNKNOWN_KID_COOLDOWN_MS = 30_000;

/** The issuer's published keys (jose keeps them) and when, on the service's clock, we fetched them. */
interface Keys {
  set: RemoteJWKSet;
  fetchedAt: number;
}

/**
 * Verifies OAuth 2.0 access tokens (JWT) for the admin API with jose: the issuer's JWKS from its
 * discovery document, cached for 10 minutes and refetched on an unknown `kid` at most once per
 * 30 s (both on the service's clock, so tests can move it); issuer, audience, expiry (30 s skew)
 * and an asymmetric-algorithm allow-list. Roles come from `rolesClaim` and from `scope` entries
 * `titanbot.<role>`.
 */
export class OidcVerifier {
  private keys: Promise<Keys> | undefined;

  constructor(private readonly settings: OidcSettings) {}

  /**
   * The operator a bearer token names. Errors: UNAUTHENTICATED (not a valid access token for this
   * API: signature, issuer, audience, expiry, algorithm, a `kid` the issuer does not publish),
   * UNAVAILABLE IDENTITY_PROVIDER_UNAVAILABLE (the issuer's discovery document or keys could not
   * be fetched).
   */
  async verify(token: string, now: Date): Promise<Operator> {
    let payload: JWTPayload;
    try {
      let keys = await this.current(now);
      try {
        payload = await this.check(token, keys, now);
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey) || now.getTime() - keys.fetchedAt < UNKNOWN_KID_COOLDOWN_MS) throw err;
        // The issuer may have rotated its signing key since we fetched: fetch once more.
        keys = await this.refetch(keys, now);
        payload = await this.check(token, keys, now);
      }
    } catch (err) {
      if (err instanceof IdentityProviderDown) {
        this.keys = undefined;
        throw new DomainError('IDENTITY_PROVIDER_UNAVAILABLE', 'the OpenID Provider did not answer; retry', [], 1_000);
      }
      throw new DomainError('UNAUTHENTICATED', 'missing, unknown, expired or revoked credential');
    }
    return { subject: String(payload.sub ?? ''), clientId: String(payload.client_id ?? payload.azp ?? ''), roles: operatorRoles(payload, this.settings.rolesClaim) };
  }

  private async check(token: string, keys: Keys, now: Date): Promise<JWTPayload> {
    const { payload } = await jwtVerify(token, keys.set, {
      issuer: this.settings.issuer,
      audience: this.settings.audience,
      algorithms: ALGORITHMS,
      clockTolerance: CLOCK_TOLERANCE_S,
      currentDate: now,
    });
    return payload;
  }

  /** The cached keys, fetched first (discovery, then the JWKS) or again when older than 10 minutes. */
  private async current(now: Date): Promise<Keys> {
    this.keys ??= (async () => {
      let discovery: { jwks_uri?: string };
      try {
        const res = await fetch(new URL('.well-known/openid-configuration', this.settings.issuer.endsWith('/') ? this.settings.issuer : `${this.settings.issuer}/`), { signal: AbortSignal.timeout(5_000) });
        if (!res.ok) throw new Error(`discovery answered ${res.status}`);
        discovery = (await res.json()) as { jwks_uri?: string };
      } catch (err) {
        throw new IdentityProviderDown(String(err));
      }
      if (!discovery.jwks_uri) throw new IdentityProviderDown('discovery names no jwks_uri');
      // jose's own time-based refetching is switched off: we decide when, on our clock.
      const set = createRemoteJWKSet(new URL(discovery.jwks_uri), { cooldownDuration: Infinity, cacheMaxAge: Infinity, timeoutDuration: 5_000 });
      return this.refetch({ set, fetchedAt: now.getTime() }, now);
    })().catch((err: unknown) => {
      this.keys = undefined;
      throw err;
    });
    const keys = await this.keys;
    return now.getTime() - keys.fetchedAt >= KEYS_MAX_AGE_MS ? this.refetch(keys, now) : keys;
  }

  private async refetch(keys: Keys, now: Date): Promise<Keys> {
    try {
      await keys.set.reload();
    } catch (err) {
      throw new IdentityProviderDown(String(err));
    }
    const fresh = { set: keys.set, fetchedAt: now.getTime() };
    this.keys = Promise.resolve(fresh);
    return fresh;
  }
}

class IdentityProviderDown extends Error {}
