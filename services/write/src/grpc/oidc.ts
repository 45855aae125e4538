import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { OperatorRole } from '@titanbot/service-kit/policy';
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
const ROLES: readonly OperatorRole[] = ['admin', 'viewer', 'token-issuer'];

/** An operator as an access token names them. */
export interface Operator {
  subject: string;
  clientId: string;
  roles: OperatorRole[];
}

/**
 * Verifies OAuth 2.0 access tokens (JWT) for the admin API with jose: the issuer's JWKS from its
 * discovery document, fetched once and cached by jose, which refetches on an unknown `kid` at most
 * once per 30 s; issuer, audience, expiry (30 s skew) and an asymmetric-algorithm allow-list.
 * Roles come from `rolesClaim` and from `scope` entries `titanbot.<role>`.
 */
export class OidcVerifier {
  private keys: Promise<JWTVerifyGetKey> | undefined;

  constructor(private readonly settings: OidcSettings) {}

  /**
   * The operator a bearer token names. Errors: UNAUTHENTICATED (not a valid access token for this
   * API: signature, issuer, audience, expiry, algorithm), UNAVAILABLE IDENTITY_PROVIDER_UNAVAILABLE
   * (the issuer's discovery document or keys could not be fetched).
   */
  async verify(token: string, now: Date): Promise<Operator> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await this.jwks(), {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        algorithms: ALGORITHMS,
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: now,
      }));
    } catch (err) {
      if (err instanceof IdentityProviderDown || err instanceof errors.JWKSTimeout || (err instanceof TypeError && /fetch/i.test(err.message))) {
        this.keys = undefined;
        throw new DomainError('IDENTITY_PROVIDER_UNAVAILABLE', 'the OpenID Provider did not answer; retry', [], 1_000);
      }
      throw new DomainError('UNAUTHENTICATED', 'missing, unknown, expired or revoked credential');
    }
    return { subject: String(payload.sub ?? ''), clientId: String(payload.client_id ?? payload.azp ?? ''), roles: rolesOf(payload, this.settings.rolesClaim) };
  }

  private jwks(): Promise<JWTVerifyGetKey> {
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
      return createRemoteJWKSet(new URL(discovery.jwks_uri), { cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    })().catch((err: unknown) => {
      this.keys = undefined;
      throw err;
    });
    return this.keys;
  }
}

class IdentityProviderDown extends Error {}

function rolesOf(payload: JWTPayload, claim: string): OperatorRole[] {
  const value = payload[claim];
  const named = Array.isArray(value) ? value.map(String) : typeof value === 'string' ? value.split(' ') : [];
  const scoped = typeof payload.scope === 'string' ? payload.scope.split(' ').filter((s) => s.startsWith('titanbot.')).map((s) => s.slice('titanbot.'.length)) : [];
  return ROLES.filter((r) => named.includes(r) || scoped.includes(r));
}
