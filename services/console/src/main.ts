import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { exitOnFatalErrors, runIfEntryPoint, serviceLogger, StartupError, stopOnSignals } from '@titanbot/service-kit/process';
import { freePort } from '@titanbot/service-kit/free-port';
import { isLoopback } from '@titanbot/service-kit/tls';
import { loadConsoleConfig, publicOrigin, type ConsoleConfig } from './config.js';
import { startDevProvider, type DevProvider } from './dev-provider.js';
import { writeServiceTransport } from './forward.js';
import { buildConsoleServer } from './server.js';
import { SessionStore } from './sessions.js';
import { SignIn } from './sign-in.js';
import { BUILT_WEB_DIR } from './web-build.js';

export interface ConsoleService {
  /** The origin browsers use, e.g. `http://127.0.0.1:8080`. */
  url: string;
  stop(): Promise<void>;
}

export interface ConsoleOptions {
  /** The built frontend (`buildWeb`); default the one `npm run build` made. */
  webDir?: string;
  /** The console's clock (ms since the epoch): sessions and token renewal. */
  now?: () => number;
}

/**
 * Composition root of the console: the development OpenID Provider when DEV_OIDC_ISSUER is set
 * (loopback only), the sign-in client for the provider, the session store, the Connect transport
 * to the write service (TLS and mutual TLS from WRITE_SERVICE_TLS_*), and the HTTP server on
 * CONSOLE_HTTP_ADDR (HTTPS with TLS_CERT_FILE; plain HTTP off loopback only with ALLOW_PLAINTEXT).
 * The console holds no admin token: every admin call carries the operator's own access token.
 * Throws StartupError for a setting that cannot work or an address that cannot be listened on.
 */
export async function startConsole(config: ConsoleConfig, logger: Logger, options: ConsoleOptions = {}): Promise<ConsoleService> {
  const now = options.now ?? Date.now;
  const host = config.CONSOLE_HTTP_ADDR.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  // The redirect URI registered at the provider names the port: port 0 is chosen here, before it is needed.
  const port = Number(/:(\d+)$/.exec(config.CONSOLE_HTTP_ADDR)![1]) || (await freePort());
  const origin = publicOrigin({ ...config, CONSOLE_HTTP_ADDR: `${host.includes(':') ? `[${host}]` : host}:${port}` });
  if (!config.TLS_CERT_FILE && !config.ALLOW_PLAINTEXT && !isLoopback(config.CONSOLE_HTTP_ADDR)) {
    throw new StartupError(`the console serves plain HTTP on loopback only: set TLS_CERT_FILE and TLS_KEY_FILE for ${config.CONSOLE_HTTP_ADDR}, or ALLOW_PLAINTEXT=true behind a TLS-terminating proxy`);
  }
  const webDir = options.webDir ?? BUILT_WEB_DIR;
  if (!existsSync(path.join(webDir, 'index.html'))) throw new StartupError(`the console's frontend is not built in ${webDir}: run npm run build`);
  const clientSecret = config.CONSOLE_OIDC_CLIENT_SECRET ?? randomBytes(32).toString('base64url');
  let dev: DevProvider | undefined;
  if (config.DEV_OIDC_ISSUER) {
    dev = await startDevProvider({
      issuer: config.DEV_OIDC_ISSUER,
      audience: config.OIDC_AUDIENCE,
      rolesClaim: config.OIDC_ROLES_CLAIM,
      people: { [config.DEV_OPERATOR_LOGIN]: { password: config.DEV_OPERATOR_PASSWORD!, roles: ['admin'] } },
      clients: [{ clientId: config.CONSOLE_OIDC_CLIENT_ID, clientSecret, redirectUri: `${origin}/auth/callback`, postLogoutRedirectUri: `${origin}/auth/signed-out` }],
    });
  }
  const issuer = config.OIDC_ISSUER ?? dev!.issuer;
  const signIn = new SignIn(
    {
      issuer,
      clientId: config.CONSOLE_OIDC_CLIENT_ID,
      clientSecret,
      redirectUri: `${origin}/auth/callback`,
      postLogoutRedirectUri: `${origin}/auth/signed-out`,
      audience: config.OIDC_AUDIENCE,
      rolesClaim: config.OIDC_ROLES_CLAIM,
    },
    now,
  );
  const tls = config.WRITE_SERVICE_TLS_CA_FILE
    ? { caFile: config.WRITE_SERVICE_TLS_CA_FILE, certFile: config.WRITE_SERVICE_TLS_CERT_FILE, keyFile: config.WRITE_SERVICE_TLS_KEY_FILE }
    : undefined;
  const app = await buildConsoleServer({
    origin,
    https: config.TLS_CERT_FILE ? { cert: readFileSync(config.TLS_CERT_FILE), key: readFileSync(config.TLS_KEY_FILE!) } : undefined,
    webDir,
    issuerOrigin: new URL(issuer).origin,
    screen: config.CONSOLE_SCREEN_SIZE,
    sessions: new SessionStore({ maxAgeMs: config.SESSION_MAX_AGE, idleTimeoutMs: config.SESSION_IDLE_TIMEOUT, maxCount: config.SESSION_MAX_COUNT }, now),
    signIn,
    transport: writeServiceTransport(config.WRITE_SERVICE_URL, tls),
    forwardTimeoutMs: config.FORWARD_TIMEOUT,
    now,
    logger,
  });
  try {
    await app.listen({ host, port });
  } catch (err) {
    await dev?.stop();
    throw new StartupError(`the console cannot listen on ${config.CONSOLE_HTTP_ADDR}: ${(err as Error).message}`);
  }
  logger.info({ url: origin, issuer, writeService: config.WRITE_SERVICE_URL }, 'console serving');
  return {
    url: origin,
    async stop() {
      await app.close();
      await dev?.stop();
    },
  };
}

runIfEntryPoint(import.meta.url, async () => {
  const config = loadConsoleConfig(process.env);
  const logger = serviceLogger(config.LOG_LEVEL, { service: 'console' });
  exitOnFatalErrors(logger);
  const service = await startConsole(config, logger);
  stopOnSignals(logger, () => service.stop());
});
