/**
 * A real OpenID Provider (oidc-provider, a certified implementation) in the test process, for the
 * admin API's OAuth 2.0 tests and `titanctl login`. Access tokens are JWTs for `audience` (RFC 8707
 * resource indicators) carrying a `roles` claim: a client-credentials client's roles by client id,
 * a person's (device flow) by the login they typed.
 */
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';

/** A confidential client for client credentials: its roles claim and the scope it asks for. */
export interface TestClient {
  roles: string[];
  scope: string;
}

export interface ProviderOptions {
  /** The `aud` of every access token (the admin API's OIDC_AUDIENCE). */
  audience: string;
  /** Confidential clients by id; every one has the secret `secret`. */
  clients: Record<string, TestClient>;
  /** People by login, with their roles; the public client `titanctl` signs them in by device flow. */
  people?: Record<string, string[]>;
}

export interface TestProvider {
  /** The issuer URL (http on loopback). */
  issuer: string;
  /** How many times the JWKS has been fetched. */
  readonly jwksRequests: number;
  /** An access token for a confidential client by client credentials. */
  accessToken(clientId: string, resource?: string): Promise<string>;
  /** Starts signing with a new key and stops publishing the old one, as a provider rotating keys does. */
  rotateSigningKey(): Promise<void>;
  /**
   * Plays the person at a browser: opens `verificationUriComplete`, confirms the code, signs in as
   * `login` and grants consent, following the provider's own pages. Resolves when the provider says
   * the sign-in succeeded; rejects otherwise.
   */
  approveDevice(verificationUriComplete: string, login: string): Promise<void>;
  stop(): Promise<void>;
}

/** The public client `titanctl login` uses for people (device authorization grant, RFC 8628). */
export const DEVICE_CLIENT_ID = 'titanctl';
const SCOPES = ['openid', 'offline_access', 'titanbot.api', 'titanbot.viewer'];

async function signingKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: `key-${Math.random().toString(36).slice(2)}`, alg: 'RS256', use: 'sig' };
}

function configure(issuer: string, options: ProviderOptions, key: JWK): Provider {
  const people = options.people ?? {};
  return new Provider(issuer, {
    jwks: { keys: [key] },
    clients: [
      ...Object.entries(options.clients).map(([id, c]) => ({
        client_id: id, client_secret: 'secret', grant_types: ['client_credentials'], redirect_uris: [], response_types: [], scope: c.scope,
      })),
      {
        client_id: DEVICE_CLIENT_ID, token_endpoint_auth_method: 'none', application_type: 'native',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], redirect_uris: [], response_types: [], scope: SCOPES.join(' '),
      },
    ],
    scopes: SCOPES,
    // Stated rather than defaulted, which also keeps the provider's advisory notices out of test output.
    cookies: { keys: ['test-cookie-key'] },
    ttl: { AccessToken: 3_600, ClientCredentials: 600, DeviceCode: 600, Grant: 86_400, IdToken: 3_600, Interaction: 600, RefreshToken: 86_400, Session: 86_400 },
    findAccount: (_ctx, sub) => (sub in people ? { accountId: sub, claims: () => ({ sub }) } : undefined),
    features: {
      clientCredentials: { enabled: true },
      deviceFlow: {
        enabled: true,
        userCodeConfirmSource: (ctx, form) => {
          ctx.body = `<!DOCTYPE html><html><body>${form}</body></html>`;
        },
        successSource: (ctx) => {
          ctx.body = '<!DOCTYPE html><html><body><h1>Sign-in Success</h1></body></html>';
        },
      },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => options.audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => ({ scope: 'titanbot.api titanbot.viewer', audience: resource, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
      },
    },
    extraTokenClaims: (_ctx, token) => {
      const { clientId, accountId } = token as { clientId?: string; accountId?: string };
      return { roles: accountId ? (people[accountId] ?? []) : (options.clients[clientId ?? '']?.roles ?? []) };
    },
  });
}

/** Starts the provider on a free loopback port. */
export async function startOpenIdProvider(options: ProviderOptions): Promise<TestProvider> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  let provider = configure(issuer, options, await signingKey());
  let jwksRequests = 0;
  server.on('request', (req, res) => {
    if (req.url === '/jwks') jwksRequests++;
    provider.callback()(req, res);
  });

  return {
    issuer,
    get jwksRequests() {
      return jwksRequests;
    },
    async accessToken(clientId, resource = options.audience) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:secret`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: options.clients[clientId]!.scope, resource }).toString(),
      });
      if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}: ${await res.text()}`);
      return ((await res.json()) as { access_token: string }).access_token;
    },
    async rotateSigningKey() {
      provider = configure(issuer, options, await signingKey());
    },
    approveDevice: (url, login) => browse(url, { login, password: 'any' }),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * A minimal browser for the provider's own HTML: keeps cookies, follows redirects, and submits
 * each page's first form with its hidden inputs plus `fill` for the visible ones, until the
 * device flow's success page.
 */
async function browse(start: string, fill: Record<string, string>): Promise<void> {
  const cookies = new Map<string, string>();
  let request: { url: string; body?: URLSearchParams } = { url: start };
  for (let step = 0; step < 20; step++) {
    const res = await fetch(request.url, {
      method: request.body ? 'POST' : 'GET',
      redirect: 'manual',
      headers: {
        cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(request.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: request.body?.toString(),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      request = { url: new URL(location, request.url).href };
      continue;
    }
    const html = await res.text();
    if (res.status === 200 && html.includes('<h1>Sign-in Success</h1>')) return;
    const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/.exec(html);
    if (res.status !== 200 || !form) throw new Error(`the provider answered ${res.status} at ${request.url}: ${html.slice(0, 500)}`);
    const body = new URLSearchParams();
    for (const input of form[2]!.matchAll(/<input[^>]*name="([^"]+)"[^>]*>/g)) {
      const value = /value="([^"]*)"/.exec(input[0])?.[1];
      body.set(input[1]!, fill[input[1]!] ?? value ?? '');
    }
    request = { url: new URL(form[1]!.replaceAll('&amp;', '&'), request.url).href, body };
  }
  throw new Error('the device flow did not finish in 20 pages');
}
