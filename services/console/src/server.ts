import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Code, ConnectError, createContextKey, createContextValues, type HandlerContext, type Transport } from '@connectrpc/connect';
import { fastifyConnectPlugin } from '@connectrpc/connect-fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyHelmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import { LRUCache } from 'lru-cache';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { operatorMayCall } from '@titanbot/service-kit/policy';
import { adminRoutes, ADMIN_SERVICES, methodPath } from './forward.js';
import type { Session, SessionStore } from './sessions.js';
import { ProviderUnavailable, SignInRefused, type PendingSignIn, type SignIn } from './sign-in.js';
import type { DescMethodUnary } from '@bufbuild/protobuf';

/** The session cookie: `__Host-` binds it to this origin, path `/`, Secure. */
export const SESSION_COOKIE = '__Host-titanbot-session';
/** The sign-in in progress (state, nonce, PKCE verifier are kept server-side under it). */
const SIGN_IN_COOKIE = '__Host-titanbot-sign-in';
/** How long a sign-in may take at the provider (ms). */
const SIGN_IN_TTL_MS = 600_000;
/** Renew an access token this long before it expires (ms). */
const RENEW_BEFORE_MS = 60_000;

export interface ConsoleServerOptions {
  /** The origin browsers use (CONSOLE_PUBLIC_URL): the only one whose requests are served. */
  origin: string;
  /** TLS material the console serves HTTPS with; undefined = plain HTTP. */
  https: { cert: Buffer; key: Buffer } | undefined;
  /** The built frontend (index.html and assets/), from `buildWeb`. */
  webDir: string;
  /** The OpenID Provider's origin: the logout form's redirect goes there (CSP form-action). */
  issuerOrigin: string;
  /** The daemons' screen (px), the canvas habits are drawn on. */
  screen: { width: number; height: number };
  sessions: SessionStore;
  signIn: SignIn;
  /** To the write service's admin API. */
  transport: Transport;
  /** Deadline of a forwarded call the browser gave none for (ms). */
  forwardTimeoutMs: number;
  /** The console's clock (ms since the epoch). */
  now: () => number;
  logger: Logger;
}

const requestKey = createContextKey<FastifyRequest | undefined>(undefined);

/** Every admin method's path, for the session's list of what the operator may call. */
const ADMIN_METHOD_PATHS = ADMIN_SERVICES.flatMap((s) => s.methods.map((m) => methodPath(m as DescMethodUnary)));

/**
 * The console's HTTP server (fastify): the frontend, the OAuth 2.0 sign-in and sign-out routes,
 * and the admin API over the Connect protocol at `/<package>.<Service>/<Method>` (forward.ts).
 *
 * Routes:
 * - `GET /auth/login?return_to=<path>`: to the provider's authorization endpoint (503 when it is away).
 * - `GET /auth/callback`: the provider's answer; starts the session and returns to `return_to`
 *   (400 for a callback without its sign-in cookie, or one the provider or the checks refuse).
 * - `POST /auth/logout`: ends the session here and at the provider (`end_session_endpoint`).
 * - `GET /auth/session`: JSON `{subject, name, roles, methods, expiresAt, screen}` (401 without a session).
 * - `GET /healthz`: 200 while the process serves.
 * - `GET /assets/*`: the built frontend, content-named and immutable.
 * - any other `GET`: the frontend's page with a session, else a redirect to sign-in.
 *
 * Every state-changing request (the admin API, logout) must come from `origin` (the `Origin`
 * header), else 403 / PERMISSION_DENIED; Connect's own header (`Connect-Protocol-Version`) is
 * required. Security headers by @fastify/helmet: a CSP with scripts and styles from this origin
 * only, `frame-ancestors 'none'`, HSTS under TLS.
 */
export async function buildConsoleServer(options: ConsoleServerOptions): Promise<FastifyInstance> {
  const { sessions, signIn, logger } = options;
  const secure = { httpOnly: true, secure: true, sameSite: 'lax', path: '/' } as const;
  // Errors are logged with our logger; one line per request would drown them (the write service audits calls).
  const app = Fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }), ...(options.https ? { https: options.https } : {}) }) as unknown as FastifyInstance;
  await app.register(fastifyCookie);
  await app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'", options.issuerOrigin],
      },
    },
    hsts: options.https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    // Not `no-referrer`: under it a browser sends `Origin: null` with the sign-out form, which the origin check must refuse.
    referrerPolicy: { policy: 'same-origin' },
    crossOriginEmbedderPolicy: false,
  });

  const pendingSignIns = new PendingSignIns();
  const sameOrigin = (req: FastifyRequest): boolean => req.headers.origin === options.origin;
  const sessionOf = (req: FastifyRequest): Promise<Session | undefined> => sessions.find(req.cookies[SESSION_COOKIE]);

  /** The session's access token, renewed first when it is about to expire (one renewal per session at a time). */
  const accessToken = async (ctx: HandlerContext): Promise<string> => {
    const req = ctx.values.get(requestKey)!;
    if (!sameOrigin(req)) throw new ConnectError(`requests come from ${options.origin} only`, Code.PermissionDenied);
    const session = await sessionOf(req);
    if (!session) throw new ConnectError('no session: sign in at /auth/login', Code.Unauthenticated);
    if (session.tokens.accessExpiresAt - options.now() > RENEW_BEFORE_MS) return session.tokens.accessToken;
    session.renewing ??= signIn.renew(session.tokens).finally(() => (session.renewing = undefined));
    try {
      session.tokens = await session.renewing;
      return session.tokens.accessToken;
    } catch (err) {
      if (err instanceof ProviderUnavailable) throw new ConnectError(err.message, Code.Unavailable);
      sessions.end(session);
      throw new ConnectError(`the session could not be renewed (${(err as Error).message}): sign in again`, Code.Unauthenticated);
    }
  };

  await app.register(fastifyConnectPlugin, {
    routes: adminRoutes(options.transport, accessToken, options.forwardTimeoutMs),
    requireConnectProtocolHeader: true,
    contextValues: (req) => createContextValues().set(requestKey, req),
  });

  const signInPath = (returnTo: string): string => `/auth/login?return_to=${encodeURIComponent(returnTo)}`;
  const unavailable = (reply: FastifyReply, err: ProviderUnavailable): FastifyReply => {
    logger.warn({ err: err.message }, 'OpenID Provider unavailable');
    return reply.code(503).header('retry-after', '5').type('text/html').send(notice('Sign-in is unavailable', 'The sign-in provider did not answer. Try again in a moment.', '/'));
  };

  app.get('/healthz', async () => ({ status: 'SERVING' }));

  app.get<{ Querystring: { return_to?: string } }>('/auth/login', async (req, reply) => {
    try {
      const { url, pending } = await signIn.begin(localPath(req.query.return_to));
      const id = pendingSignIns.add(pending, options.now());
      return reply.setCookie(SIGN_IN_COOKIE, await sessions.seal(id), { ...secure, maxAge: SIGN_IN_TTL_MS / 1000 }).redirect(url, 303);
    } catch (err) {
      if (err instanceof ProviderUnavailable) return unavailable(reply, err);
      throw err;
    }
  });

  app.get('/auth/callback', async (req, reply) => {
    const sealed = req.cookies[SIGN_IN_COOKIE];
    const id = sealed ? await sessions.open(sealed) : undefined;
    const pending = id ? pendingSignIns.take(id, options.now()) : undefined;
    reply.clearCookie(SIGN_IN_COOKIE, secure);
    if (!pending) return reply.code(400).type('text/html').send(notice('Sign-in expired', 'This sign-in was not started here or took too long.', '/auth/login'));
    try {
      const signedIn = await signIn.complete(new URL(req.url, options.origin), pending);
      const { cookie } = await sessions.create(signedIn, signedIn.tokens);
      logger.info({ subject: signedIn.subject, roles: signedIn.roles }, 'operator signed in');
      return reply.setCookie(SESSION_COOKIE, cookie, secure).redirect(pending.returnTo, 303);
    } catch (err) {
      if (err instanceof ProviderUnavailable) return unavailable(reply, err);
      if (err instanceof SignInRefused) {
        logger.warn({ err: err.message }, 'sign-in refused');
        return reply.code(400).type('text/html').send(notice('Sign-in refused', err.message, '/auth/login'));
      }
      throw err;
    }
  });

  // The sign-out form (a plain HTML form, so it works before any script runs) has no fields.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 1024 }, (_req, _body, done) => done(null, {}));
  app.post('/auth/logout', async (req, reply) => {
    if (!sameOrigin(req)) return reply.code(403).type('text/plain').send(`requests come from ${options.origin} only`);
    const session = await sessionOf(req);
    reply.clearCookie(SESSION_COOKIE, secure);
    if (!session) return reply.redirect('/auth/signed-out', 303);
    sessions.end(session);
    logger.info({ subject: session.subject }, 'operator signed out');
    return reply.redirect((await signIn.end(session.tokens)) ?? '/auth/signed-out', 303);
  });

  app.get('/auth/signed-out', async (_req, reply) => reply.type('text/html').header('cache-control', 'no-store').send(notice('Signed out', 'You have signed out of the Titanbot console.', '/')));

  app.get('/auth/session', async (req, reply) => {
    const session = await sessionOf(req);
    if (!session) return reply.code(401).send({ error: 'no session', signIn: signInPath('/') });
    return reply.header('cache-control', 'no-store').send({
      subject: session.subject,
      name: session.name,
      roles: session.roles,
      methods: ADMIN_METHOD_PATHS.filter((p) => operatorMayCall(session.roles, p)),
      expiresAt: new Date(sessions.expiresAt(session)).toISOString(),
      screen: options.screen,
    });
  });

  await app.register(fastifyStatic, { root: path.join(options.webDir, 'assets'), prefix: '/assets/', immutable: true, maxAge: '365d', index: false, wildcard: true });

  const page = await readFile(path.join(options.webDir, 'index.html'), 'utf8');
  app.setNotFoundHandler(async (req, reply) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply.code(404).type('text/plain').send('not found');
    if (!(await sessionOf(req))) return reply.redirect(signInPath(req.url), 303);
    return reply.type('text/html').header('cache-control', 'no-store').send(page);
  });

  return app;
}

/** `return_to` only ever names a path of this console (never another site: no open redirect). */
function localPath(returnTo: string | undefined): string {
  return returnTo && /^\/(?![/\\])/.test(returnTo) && !returnTo.startsWith('/auth/') ? returnTo : '/';
}

/** Sign-ins in progress by id, each usable once and for SIGN_IN_TTL_MS; beyond 10,000 at once the oldest are dropped. */
class PendingSignIns {
  private readonly byId = new LRUCache<string, PendingSignIn & { startedAt: number }>({ max: 10_000 });

  add(pending: PendingSignIn, now: number): string {
    this.byId.set(pending.state, { ...pending, startedAt: now });
    return pending.state;
  }

  take(id: string, now: number): PendingSignIn | undefined {
    const pending = this.byId.get(id);
    this.byId.delete(id);
    return pending && now - pending.startedAt < SIGN_IN_TTL_MS ? pending : undefined;
  }
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A small page of the console's own (errors, signed out), styled by the frontend's stylesheet. */
function notice(title: string, text: string, next: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)} · Titanbot console</title></head><body><main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p><p><a href="${escapeHtml(next)}">Continue</a></p></main></body></html>`;
}
