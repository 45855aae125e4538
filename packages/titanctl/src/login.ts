import { readFile, rm, stat } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import * as oidc from 'openid-client';
import writeFileAtomic from 'write-file-atomic';

/**
 * An operator's OAuth 2.0 sign-in as `titanctl login` keeps it between runs, in a file of mode
 * 0600: the tokens and what renewing them needs. Its tokens are never printed.
 */
export interface Session {
  issuer: string;
  clientId: string;
  /** How it was obtained, and so how it is renewed: a refresh token, or client credentials again. */
  grant: 'device_code' | 'client_credentials';
  scope: string;
  /** The resource indicator (RFC 8707) asked for: the admin API's OIDC_AUDIENCE. */
  audience?: string;
  accessToken: string;
  refreshToken?: string;
  /** When the access token expires (ms since the epoch). */
  expiresAt: number;
  /** Who signed in: the ID token's `sub` for a person, the client id for automation. */
  subject: string;
}

/** What `titanctl login` needs to reach the provider. */
export interface LoginSettings {
  /** The OpenID Provider's issuer URL (https; http only on a loopback address). */
  issuer: string;
  clientId: string;
  /** Set for automation: the client credentials grant; absent for people: the device grant. */
  clientSecret?: string;
  /** Defaults: `openid offline_access` for people (a refresh token), none for automation. */
  scope?: string;
  audience?: string;
}

/** What a person is shown to approve a device sign-in (RFC 8628 §3.3). */
export interface UserCodePrompt {
  verificationUri: string;
  /** The URI with the code filled in, when the provider offers one. */
  verificationUriComplete?: string;
  userCode: string;
  /** How long the code stays valid (seconds). */
  expiresInS: number;
}

/** Access tokens are renewed this long before they expire (ms), so no call carries a dying one. */
export const REFRESH_MARGIN_MS = 60_000;
/** Lifetime assumed when the provider states none (ms): short, so the token is renewed early. */
const DEFAULT_LIFETIME_MS = 300_000;
const DEVICE_SCOPE = 'openid offline_access';

/** The environment variable holding the client secret for `titanctl login --client-credentials`. */
export const CLIENT_SECRET_ENV = 'TITANBOT_CLIENT_SECRET';

/**
 * Where the session is kept: `$TITANBOT_CONFIG_DIR/session.json`, else
 * `$XDG_CONFIG_HOME/titanctl/session.json`, else `~/.config/titanctl/session.json`.
 */
export function sessionPath(env: NodeJS.ProcessEnv): string {
  const dir = env.TITANBOT_CONFIG_DIR || path.join(env.XDG_CONFIG_HOME || path.join(homedir(), '.config'), 'titanctl');
  return path.join(dir, 'session.json');
}

/** A login failed in a way the operator can act on; the message says how. */
export class LoginError extends Error {}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

async function configuration(s: Pick<LoginSettings, 'issuer' | 'clientId' | 'clientSecret'>): Promise<oidc.Configuration> {
  const url = new URL(s.issuer);
  // Same rule as the services' plaintext refusal: http only where it cannot leave the machine.
  const insecure = url.protocol === 'http:' && LOOPBACK.has(url.hostname);
  try {
    return await oidc.discovery(url, s.clientId, undefined, s.clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(s.clientSecret), {
      execute: insecure ? [oidc.allowInsecureRequests] : [],
    });
  } catch (err) {
    throw providerError(err, s.issuer);
  }
}

const refused = (error: string, description: string | undefined): LoginError =>
  new LoginError(`the OpenID Provider refused: ${error}${description ? `: ${description}` : ''}`);

function providerError(err: unknown, issuer: string): LoginError {
  if (err instanceof oidc.ResponseBodyError) return refused(err.error, err.error_description);
  // A refused client authentication comes back as a 401 challenge (RFC 6750 §3) rather than a body.
  if (err instanceof oidc.WWWAuthenticateChallengeError) return refused(err.cause[0]?.parameters.error ?? String(err.status), err.cause[0]?.parameters.error_description);
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return new LoginError(`the OpenID Provider at ${issuer} could not be used: ${err instanceof Error ? err.message : String(err)}${cause}`);
}

function sessionOf(
  base: Pick<Session, 'issuer' | 'clientId' | 'grant' | 'scope' | 'audience'>,
  tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers,
  now: number,
  previous?: Session,
): Session {
  return {
    ...base,
    accessToken: tokens.access_token,
    // A provider may keep the refresh token unchanged and not send it again.
    ...((tokens.refresh_token ?? previous?.refreshToken) ? { refreshToken: tokens.refresh_token ?? previous?.refreshToken } : {}),
    expiresAt: now + (tokens.expires_in === undefined ? DEFAULT_LIFETIME_MS : tokens.expires_in * 1_000),
    subject: String(tokens.claims()?.sub ?? previous?.subject ?? base.clientId),
  };
}

const resourceParameter = (audience: string | undefined): Record<string, string> => (audience ? { resource: audience } : {});

/**
 * Signs in and returns the session (not yet saved). With a client secret: the client credentials
 * grant. Without: the device authorization grant (RFC 8628): `present` is handed the code to
 * show the person, then the provider is polled at the interval it asks for until they approve,
 * deny, or the code expires. `now` is ms since the epoch. Throws LoginError.
 */
export async function logIn(settings: LoginSettings, present: (prompt: UserCodePrompt) => void, now: () => number): Promise<Session> {
  const config = await configuration(settings);
  const base = { issuer: settings.issuer, clientId: settings.clientId, ...(settings.audience ? { audience: settings.audience } : {}) };
  try {
    if (settings.clientSecret !== undefined) {
      const scope = settings.scope ?? '';
      const tokens = await oidc.clientCredentialsGrant(config, { ...(scope ? { scope } : {}), ...resourceParameter(settings.audience) });
      return sessionOf({ ...base, grant: 'client_credentials', scope }, tokens, now());
    }
    const scope = settings.scope ?? DEVICE_SCOPE;
    const device = await oidc.initiateDeviceAuthorization(config, { scope, ...resourceParameter(settings.audience) });
    present({
      verificationUri: device.verification_uri,
      ...(device.verification_uri_complete ? { verificationUriComplete: device.verification_uri_complete } : {}),
      userCode: device.user_code,
      expiresInS: device.expires_in,
    });
    const tokens = await oidc.pollDeviceAuthorizationGrant(config, device, resourceParameter(settings.audience));
    return sessionOf({ ...base, grant: 'device_code', scope }, tokens, now());
  } catch (err) {
    throw providerError(err, settings.issuer);
  }
}

/**
 * The session in `file`, or undefined when there is none. Throws LoginError when the file is
 * readable by anyone but its owner (as ssh does with keys), or does not hold a session.
 */
export async function readSession(file: string): Promise<Session | undefined> {
  let text: string;
  try {
    if (((await stat(file)).mode & 0o077) !== 0) throw new LoginError(`${file} is readable by others; remove it and log in again`);
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let session: Partial<Session>;
  try {
    session = JSON.parse(text) as Partial<Session>;
  } catch {
    session = {};
  }
  if (typeof session.accessToken !== 'string' || typeof session.expiresAt !== 'number' || !session.issuer || !session.clientId) {
    throw new LoginError(`${file} does not hold a titanctl session; remove it and log in again`);
  }
  return session as Session;
}

/** Saves the session atomically with mode 0600, its directory 0700. */
export async function writeSession(file: string, session: Session): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, `${JSON.stringify(session, null, 2)}\n`, { mode: 0o600 });
}

/**
 * `session` as it is, or renewed when its access token expires within REFRESH_MARGIN_MS: with the
 * refresh token (device sign-in), or by client credentials again with the secret from
 * TITANBOT_CLIENT_SECRET (the secret is never saved). A renewed session is saved to `file`.
 * Throws LoginError when it cannot be renewed (the message says to log in again).
 */
export async function freshSession(file: string, session: Session, env: NodeJS.ProcessEnv, now: () => number): Promise<Session> {
  if (session.expiresAt - now() > REFRESH_MARGIN_MS) return session;
  const secret = env[CLIENT_SECRET_ENV];
  const base = { issuer: session.issuer, clientId: session.clientId, grant: session.grant, scope: session.scope, ...(session.audience ? { audience: session.audience } : {}) };
  let renewed: Session;
  if (session.grant === 'device_code' && session.refreshToken) {
    const config = await configuration(base);
    try {
      renewed = sessionOf(base, await oidc.refreshTokenGrant(config, session.refreshToken, resourceParameter(session.audience)), now(), session);
    } catch (err) {
      throw new LoginError(`${providerError(err, session.issuer).message}; run titanctl login again`);
    }
  } else if (session.grant === 'client_credentials' && secret) {
    renewed = await logIn({ ...base, clientSecret: secret }, () => undefined, now);
  } else {
    throw new LoginError(
      session.grant === 'client_credentials'
        ? `the access token from titanctl login has expired; set ${CLIENT_SECRET_ENV} to renew it, or log in again`
        : 'the access token from titanctl login has expired and cannot be refreshed; run titanctl login again',
    );
  }
  await writeSession(file, renewed);
  return renewed;
}

/**
 * Forgets the session in `file`: its refresh token is revoked at the provider when the provider
 * offers revocation (RFC 7009; a provider that cannot be reached does not stop the log-out), then
 * the file is removed. Resolves with whether there was a session.
 */
export async function logOut(file: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const session = await readSession(file);
  if (!session) return false;
  const token = session.refreshToken ?? session.accessToken;
  try {
    const config = await configuration({ ...session, ...(session.grant === 'client_credentials' && env[CLIENT_SECRET_ENV] ? { clientSecret: env[CLIENT_SECRET_ENV] } : {}) });
    if (config.serverMetadata().revocation_endpoint) await oidc.tokenRevocation(config, token);
  } catch {
    // The file goes regardless: a token left unrevoked still expires on its own.
  }
  await rm(file, { force: true });
  return true;
}
