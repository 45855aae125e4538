/**
 * The console as tests run it: a real OpenID Provider (the development provider, oidc-provider)
 * with an admin and a viewer, the frontend built into a temporary folder, and the console on a
 * loopback port in the test process, reading the test's clock.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '@titanbot/service-kit/free-port';
import { pino } from 'pino';
import { loadConsoleConfig } from '../../src/config.js';
import { startDevProvider, type DevProvider } from '../../src/dev-provider.js';
import { startConsole, type ConsoleService } from '../../src/main.js';
import { buildWeb } from '../../src/web-build.js';

export const AUDIENCE = 'urn:titanbot:admin';
const CLIENT_ID = 'titanbot-console';
const CLIENT_SECRET = 'console-test-secret';
/** The people who sign in, by login. */
export const PEOPLE = {
  ada: { password: 'ada-password-1', roles: ['admin'] },
  vic: { password: 'vic-password-1', roles: ['viewer'] },
  tia: { password: 'tia-password-1', roles: ['token-issuer'] },
};

/** A provider that knows the console at `origin`, which then starts with `startTestConsole`. */
export interface TestProvider {
  provider: DevProvider;
  /** `http://127.0.0.1:<port>`: where the console will listen. */
  origin: string;
}

export { SESSION_COOKIE } from '../../src/server.js';
/** SESSION_IDLE_TIMEOUT's default: a session without a request for this long has ended. */
export const SESSION_IDLE_TIMEOUT_MS = 3_600_000;

/** Seconds an access token lives at the test provider. */
export const ACCESS_TOKEN_TTL_S = 600;

export async function startTestProvider(): Promise<TestProvider> {
  const origin = `http://127.0.0.1:${await freePort()}`;
  const provider = await startDevProvider({
    issuer: 'http://127.0.0.1:0',
    audience: AUDIENCE,
    rolesClaim: 'roles',
    people: PEOPLE,
    clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUri: `${origin}/auth/callback`, postLogoutRedirectUri: `${origin}/auth/signed-out` }],
    accessTokenTtlSeconds: ACCESS_TOKEN_TTL_S,
  });
  return { provider, origin };
}

/** Builds the frontend and starts the console at the provider's `origin`, forwarding to `writeAddress`. */
export async function startTestConsole(p: TestProvider, writeAddress: string, now: () => number, env: Record<string, string> = {}): Promise<ConsoleService> {
  const webDir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-console-web-'));
  await buildWeb(webDir);
  const config = loadConsoleConfig({
    CONSOLE_HTTP_ADDR: new URL(p.origin).host,
    WRITE_SERVICE_URL: writeAddress,
    OIDC_ISSUER: p.provider.issuer,
    OIDC_AUDIENCE: AUDIENCE,
    CONSOLE_OIDC_CLIENT_ID: CLIENT_ID,
    CONSOLE_OIDC_CLIENT_SECRET: CLIENT_SECRET,
    ...env,
  });
  const service = await startConsole(config, pino({ level: 'warn' }), { webDir, now });
  return {
    ...service,
    async stop() {
      await service.stop();
      await rm(webDir, { recursive: true, force: true });
    },
  };
}
