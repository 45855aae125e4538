import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { operatorRoles, type OperatorRole } from '@titanbot/service-kit/policy';
import { isLoopback } from '@titanbot/service-kit/tls';
import type { SessionTokens } from './sessions.js';

/** The console as an OAuth 2.0 client of the OpenID Provider. */
export interface SignInSettings {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** `<console origin>/auth/callback`, as registered at the provider. */
  redirectUri: string;
  /** Where the provider sends the browser after RP-initiated logout. */
  postLogoutRedirectUri: string;
  /** The write service's OIDC_AUDIENCE, asked for as the RFC 8707 `resource`. */
  audience: string;
  /** The claim the write service reads roles from. */
  rolesClaim: string;
}

/** What the browser must bring back from the provider for the sign-in to be accepted (kept server-side). */
export interface PendingSignIn {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** The console path the operator asked for, reached after sign-in. */
  returnTo: string;
}

/** Who signed in and the tokens they got. */
export interface SignedIn {
  subject: string;
  name: string;
  roles: OperatorRole[];
  tokens: SessionTokens;
}

/** The provider did not answer (or answered with a server error): UNAVAILABLE to the operator, retry later. */
export class ProviderUnavailable extends Error {
  override readonly name = 'ProviderUnavailable';
}

/** The provider refused (a code or refresh token it does not honour, a failed check): sign in again. */
export class SignInRefused extends Error {
  override readonly name = 'SignInRefused';
}

/**
 * The authorization code flow with PKCE (RFC 7636) as the IETF's "OAuth 2.0 for Browser-Based
 * Applications" backend-for-frontend runs it, with openid-client: `state`, `nonce` and the code
 * verifier are checked by the library; access tokens are asked for the write service's audience
 * (RFC 8707), renewed by refresh token, and the refresh token is revoked (RFC 7009) on sign-out.
 * The provider's discovery document is fetched on first use and again after a failure, so the
 * console starts while the provider is away. Times are on the console's clock (`now`, ms).
 */
export class SignIn {
  private configuration: Promise<oidc.Configuration> | undefined;

  constructor(
    private readonly settings: SignInSettings,
    private readonly now: () => number,
  ) {}

  /** The provider's authorization URL for a new sign-in, and what to keep for its callback. Errors: ProviderUnavailable. */
  async begin(returnTo: string): Promise<{ url: string; pending: PendingSignIn }> {
    const config = await this.config();
    const pending = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier(), returnTo };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.settings.redirectUri,
      scope: 'openid profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
      resource: this.settings.audience,
    });
    return { url: url.href, pending };
  }

  /**
   * Redeems the code the provider sent to `callbackUrl` (the whole URL of the callback request).
   * Errors: SignInRefused (state, nonce, PKCE or the provider's own error), ProviderUnavailable.
   */
  async complete(callbackUrl: URL, pending: PendingSignIn): Promise<SignedIn> {
    const config = await this.config();
    const tokens = await this.ask(() =>
      oidc.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: pending.codeVerifier, expectedState: pending.state, expectedNonce: pending.nonce, idTokenExpected: true }, { resource: this.settings.audience }),
    );
    const claims = tokens.claims()!;
    const issued = this.tokensOf(tokens, undefined);
    return { subject: claims.sub, name: typeof claims.name === 'string' && claims.name ? claims.name : claims.sub, roles: this.rolesOf(issued.accessToken), tokens: issued };
  }

  /** New tokens by refresh token. Errors: SignInRefused (no refresh token, or one the provider refuses), ProviderUnavailable. */
  async renew(current: SessionTokens): Promise<SessionTokens> {
    if (!current.refreshToken) throw new SignInRefused('the provider gave no refresh token: sign in again');
    const config = await this.config();
    const tokens = await this.ask(() => oidc.refreshTokenGrant(config, current.refreshToken!, { resource: this.settings.audience }));
    return this.tokensOf(tokens, current);
  }

  /**
   * Ends the operator's grant at the provider: revokes the refresh token (when the provider has a
   * revocation endpoint) and returns the provider's end-session URL (when it offers one) for the
   * browser to visit; undefined otherwise. Best effort: a provider that is away does not keep the
   * console's own session alive.
   */
  async end(tokens: SessionTokens): Promise<string | undefined> {
    let config: oidc.Configuration;
    try {
      config = await this.config();
    } catch {
      return undefined;
    }
    const metadata = config.serverMetadata();
    if (tokens.refreshToken && metadata.revocation_endpoint) await oidc.tokenRevocation(config, tokens.refreshToken).catch(() => undefined);
    if (!metadata.end_session_endpoint) return undefined;
    return oidc.buildEndSessionUrl(config, { post_logout_redirect_uri: this.settings.postLogoutRedirectUri, ...(tokens.idToken ? { id_token_hint: tokens.idToken } : {}) }).href;
  }

  /** The operator's roles as the write service reads them from the access token (shown, not enforced, here). */
  private rolesOf(accessToken: string): OperatorRole[] {
    try {
      return operatorRoles(decodeJwt(accessToken), this.settings.rolesClaim);
    } catch {
      // An opaque access token: the page offers nothing the write service might refuse.
      return [];
    }
  }

  private tokensOf(response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers, previous: SessionTokens | undefined): SessionTokens {
    return {
      accessToken: response.access_token,
      // A provider that states no lifetime: renew after five minutes rather than never.
      accessExpiresAt: this.now() + (response.expiresIn() ?? 300) * 1000,
      // Providers that do not rotate refresh tokens answer without one: keep the old one.
      refreshToken: response.refresh_token ?? previous?.refreshToken,
      idToken: response.id_token ?? previous?.idToken,
    };
  }

  private config(): Promise<oidc.Configuration> {
    this.configuration ??= (async () => {
      const url = new URL(this.settings.issuer);
      const insecure = url.protocol === 'http:' && isLoopback(url.host);
      return this.ask(() =>
        oidc.discovery(url, this.settings.clientId, undefined, oidc.ClientSecretBasic(this.settings.clientSecret), { execute: insecure ? [oidc.allowInsecureRequests] : [], timeout: 5 }),
      );
    })().catch((err: unknown) => {
      this.configuration = undefined;
      throw err;
    });
    return this.configuration;
  }

  /** Runs a provider call, sorting its failures into unavailable (retry later) and refused (sign in again). */
  private async ask<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (isOutage(err)) throw new ProviderUnavailable(`the OpenID Provider at ${this.settings.issuer} did not answer: ${err instanceof Error ? err.message : String(err)}`);
      if (err instanceof oidc.ResponseBodyError) throw new SignInRefused(`${err.error}${err.error_description ? `: ${err.error_description}` : ''}`);
      throw new SignInRefused(err instanceof Error ? err.message : String(err));
    }
  }
}

/** A network failure, a timeout or a 5xx answer, anywhere in the error's cause chain. */
function isOutage(err: unknown): boolean {
  for (let e = err; e instanceof Error || e instanceof Response; e = e instanceof Error ? e.cause : undefined) {
    if (e instanceof Response) return e.status >= 500;
    if (e instanceof TypeError || e.name === 'TimeoutError' || e.name === 'AbortError') return true;
    if (e instanceof oidc.ResponseBodyError) return e.status >= 500;
  }
  return false;
}
