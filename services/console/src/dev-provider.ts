import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Adapter, type ClientMetadata, type KoaContextWithOIDC } from 'oidc-provider';
// @ts-expect-error oidc-provider's types do not declare the module of its in-memory adapter.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import { StartupError } from '@titanbot/service-kit/process';
import { isLoopback } from '@titanbot/service-kit/tls';

/** A person the development provider signs in: their password and the roles their access tokens carry. */
export interface DevPerson {
  password: string;
  roles: string[];
}

/** A confidential client of the development provider (the console), registered at start. */
export interface DevClient {
  clientId: string;
  clientSecret: string;
  /** Where the authorization code goes back to (the console's `/auth/callback`). */
  redirectUri: string;
  /** Where the provider sends the browser after RP-initiated logout. */
  postLogoutRedirectUri: string;
}

export interface DevProviderOptions {
  /** The issuer URL, `http://<loopback host>:<port>`; port 0 = any free port. */
  issuer: string;
  /** The `aud` of every access token (the write service's OIDC_AUDIENCE), asked for as an RFC 8707 resource. */
  audience: string;
  /** The claim the write service reads roles from (OIDC_ROLES_CLAIM). */
  rolesClaim: string;
  people: Record<string, DevPerson>;
  clients: DevClient[];
  /**
   * Confidential clients for automation by client credentials (e.g. `titanctl login
   * --client-credentials`, benchmarks), by client id: their secret and the roles their tokens carry.
   */
  machines?: Record<string, { secret: string; roles: string[] }>;
  /** Seconds an access token lives (default 600): short, so renewal by refresh token is exercised. */
  accessTokenTtlSeconds?: number;
}

export interface DevProvider {
  /** The issuer URL with the port it listens on. */
  issuer: string;
  /** Refresh-token grants answered so far: how a test sees the console renew access. */
  readonly refreshGrants: number;
  stop(): Promise<void>;
}

/** The sign-in page's fields, the only inputs a person types into the provider. */
const LOGIN_FIELDS = ['login', 'password'] as const;
/** Largest sign-in form body read (bytes): two short fields. */
const MAX_FORM_BYTES = 4096;

/**
 * A development OpenID Provider (oidc-provider, a certified implementation) for the console when
 * no OIDC_ISSUER is configured, and for the console's tests and benchmark: the authorization code
 * flow with PKCE for the registered confidential clients, client credentials for `machines`, a
 * password sign-in page of its own, no consent page (the console is first-party: its grant is made
 * on sign-in), refresh tokens, RP-initiated logout, and JWT access tokens for `audience` carrying
 * each person's (or machine's) roles in `rolesClaim`. Keys and
 * sessions live in memory. Refuses with StartupError to listen anywhere but loopback: it is not a
 * production identity provider.
 */
export async function startDevProvider(options: DevProviderOptions): Promise<DevProvider> {
  const url = new URL(options.issuer);
  if (url.protocol !== 'http:' || !isLoopback(url.host)) throw new StartupError(`the development OpenID Provider listens on loopback only (http://127.0.0.1:<port>), not ${options.issuer}: set OIDC_ISSUER for a real provider`);
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new StartupError(`the development OpenID Provider cannot listen on ${url.host}: ${err.message}`)));
    server.listen(Number(url.port || 80), url.hostname, resolve);
  });
  const issuer = `http://${url.hostname}:${(server.address() as { port: number }).port}`;
  const provider = configure(issuer, options, await signingKey());
  let refreshGrants = 0;
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    if (ctx.oidc.params?.grant_type === 'refresh_token') refreshGrants++;
  });
  const callback = provider.callback();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/interaction/')) signInPage(provider, options.people, req, res).catch((err: unknown) => fail(res, err));
    else callback(req, res);
  });
  return {
    issuer,
    get refreshGrants() {
      return refreshGrants;
    },
    stop: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

async function signingKey() {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: randomBytes(8).toString('hex'), alg: 'ES256', use: 'sig' };
}

/**
 * The library's own in-memory storage, named as our choice: a development provider keeps nothing
 * across restarts on purpose (the library warns whenever its default is left unset).
 */
class DevStorage extends (MemoryAdapter as new (model: string) => Adapter) {}

function configure(issuer: string, options: DevProviderOptions, key: Awaited<ReturnType<typeof signingKey>>): Provider {
  const provider = new Provider(issuer, {
    adapter: DevStorage,
    jwks: { keys: [key] },
    clients: [
      ...options.clients.map((c): ClientMetadata => ({
        client_id: c.clientId,
        client_secret: c.clientSecret,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [c.redirectUri],
        post_logout_redirect_uris: [c.postLogoutRedirectUri],
      })),
      ...Object.entries(options.machines ?? {}).map(([id, m]): ClientMetadata => ({
        client_id: id,
        client_secret: m.secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'titanbot.api',
      })),
    ],
    // Its one signing key is ES256 (the library's default would be RS256).
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    pkce: { required: () => true },
    scopes: ['openid', 'profile', 'titanbot.api'],
    claims: { openid: ['sub'], profile: ['name'] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: { AccessToken: options.accessTokenTtlSeconds ?? 600, AuthorizationCode: 60, ClientCredentials: 600, Grant: 86_400, IdToken: 3_600, Interaction: 600, RefreshToken: 86_400, Session: 86_400 },
    findAccount: (_ctx, sub) => (sub in options.people ? { accountId: sub, claims: () => ({ sub, name: sub }) } : undefined),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // A first-party client: the grant is made when the person signs in, never asked for.
    loadExistingGrant: async (ctx) => {
      const session = ctx.oidc.session;
      const client = ctx.oidc.client;
      if (!session?.accountId || !client) return undefined;
      const grant = new ctx.oidc.provider.Grant({ accountId: session.accountId, clientId: client.clientId });
      grant.addOIDCScope('openid profile');
      grant.addResourceScope(options.audience, 'titanbot.api');
      await grant.save();
      return grant;
    },
    // Refresh tokens without `offline_access`: the console renews access for as long as its session lives.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx: KoaContextWithOIDC, form: string) => {
          ctx.body = page('Sign out', `<h1>Sign out of the Titanbot development provider?</h1>${form}<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>`);
        },
        postLogoutSuccessSource: (ctx: KoaContextWithOIDC) => {
          ctx.body = page('Signed out', '<h1>Signed out</h1>');
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => options.audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== options.audience) throw new Error(`unknown resource ${resource}`);
          return { scope: 'titanbot.api', audience: resource, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
        },
      },
    },
    extraTokenClaims: (_ctx, token) => {
      const { accountId, clientId } = token as { accountId?: string; clientId?: string };
      const roles = accountId ? options.people[accountId]?.roles : options.machines?.[clientId ?? '']?.roles;
      return { [options.rolesClaim]: roles ?? [] };
    },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Sign-in error', `<h1>Sign-in error</h1><p>${escapeHtml(String(out.error))}: ${escapeHtml(String(out.error_description ?? ''))}</p>`);
    },
  });
  return provider;
}

/**
 * The provider's own sign-in page: GET shows the form, POST checks the password and finishes the
 * login prompt. Every other prompt is answered by `loadExistingGrant`.
 */
async function signInPage(provider: Provider, people: Record<string, DevPerson>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name !== 'login') {
    await provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true });
    return;
  }
  let problem = '';
  if (req.method === 'POST') {
    const form = new URLSearchParams(await readBody(req));
    const [login, password] = LOGIN_FIELDS.map((f) => form.get(f) ?? '');
    const person = people[login!];
    if (person && equal(person.password, password!)) {
      await provider.interactionFinished(req, res, { login: { accountId: login! } }, { mergeWithLastSubmission: false });
      return;
    }
    problem = '<p role="alert">Unknown login or wrong password.</p>';
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(
    page(
      'Sign in',
      `<h1>Sign in to Titanbot</h1>${problem}<form method="post" action="/interaction/${details.uid}">` +
        '<label for="login">Login</label><input id="login" name="login" autocomplete="username" required autofocus>' +
        '<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>' +
        '<button type="submit">Sign in</button></form>',
    ),
  );
}

const equal = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > MAX_FORM_BYTES) throw new Error('sign-in form too large');
  }
  return body;
}

function fail(res: ServerResponse, err: unknown): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' });
  res.end(page('Sign-in error', `<h1>Sign-in error</h1><p>${escapeHtml(err instanceof Error ? err.message : String(err))}</p><p>Start again from the console.</p>`));
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A whole page with its own small stylesheet: nothing is fetched from elsewhere. */
const page = (title: string, body: string): string =>
  `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>` +
  '<style>body{font-family:system-ui,sans-serif;max-width:22rem;margin:3rem auto;padding:0 1rem}label,input,button{display:block;width:100%;box-sizing:border-box;margin:.4rem 0}input,button{padding:.5rem;font-size:1rem}button{background:#1d4ed8;color:#fff;border:0;cursor:pointer}[role=alert]{color:#b91c1c}</style>' +
  `</head><body><main>${body}</main></body></html>`;
