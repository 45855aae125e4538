import { duration, flag, logLevel, parseConfig } from '@titanbot/service-kit/config';
import { StartupError } from '@titanbot/service-kit/process';
import { z } from 'zod';

const hostPort = z.string().regex(/^\S*:\d{1,5}$/, 'host:port');

const schema = z.object({
  /** host:port the console (frontend and middleware) listens on. */
  CONSOLE_HTTP_ADDR: hostPort.default('127.0.0.1:8080'),
  /**
   * The origin operators' browsers use (scheme, host, port; e.g. `https://console.example.com`):
   * the redirect URI registered at the provider is `<origin>/auth/callback`, and requests from any
   * other origin are refused. Default: `http(s)://<CONSOLE_HTTP_ADDR>`.
   */
  CONSOLE_PUBLIC_URL: z.string().url().optional(),
  /** PEM certificate chain and key the console serves HTTPS with (HSTS is sent then); unset = plain HTTP, loopback only unless ALLOW_PLAINTEXT. */
  TLS_CERT_FILE: z.string().optional(),
  TLS_KEY_FILE: z.string().optional(),
  /** Plain HTTP on a non-loopback address (behind a TLS-terminating proxy); refused otherwise. */
  ALLOW_PLAINTEXT: flag.default(false),

  /** host:port of the write service's admin API. */
  WRITE_SERVICE_URL: z.string().default('127.0.0.1:50051'),
  /** TLS toward the write service: the CA it is verified with (set = TLS), and the console's client certificate and key (mutual TLS). */
  WRITE_SERVICE_TLS_CA_FILE: z.string().optional(),
  WRITE_SERVICE_TLS_CERT_FILE: z.string().optional(),
  WRITE_SERVICE_TLS_KEY_FILE: z.string().optional(),
  /** Deadline of one forwarded call when the browser sets none. */
  FORWARD_TIMEOUT: duration.default(10_000),

  /** The OpenID Provider operators sign in with; unset = the development provider (DEV_OIDC_ISSUER). */
  OIDC_ISSUER: z.string().url().optional(),
  /** The write service's OIDC_AUDIENCE: asked for as the RFC 8707 resource of every access token. */
  OIDC_AUDIENCE: z.string().min(1).default('urn:titanbot:admin'),
  /** The claim holding role names, as the write service reads it (OIDC_ROLES_CLAIM). */
  OIDC_ROLES_CLAIM: z.string().min(1).default('roles'),
  /** The console's client registration at the provider (a confidential client); the development provider registers it with a fresh secret. */
  CONSOLE_OIDC_CLIENT_ID: z.string().min(1).default('titanbot-console'),
  CONSOLE_OIDC_CLIENT_SECRET: z.string().min(1).optional(),

  /**
   * Without OIDC_ISSUER: run the development OpenID Provider in this process at this loopback
   * issuer URL, with one operator `DEV_OPERATOR_LOGIN` (role admin) whose password is
   * DEV_OPERATOR_PASSWORD. `npm start` sets all three.
   */
  DEV_OIDC_ISSUER: z.string().url().optional(),
  DEV_OPERATOR_LOGIN: z.string().min(1).default('operator'),
  DEV_OPERATOR_PASSWORD: z.string().min(12, 'at least 12 characters').optional(),

  /** A session ends this long after sign-in, whatever happens. */
  SESSION_MAX_AGE: duration.default(12 * 3_600_000),
  /** A session ends after this long without a request. */
  SESSION_IDLE_TIMEOUT: duration.default(3_600_000),
  /** Sessions kept at once (the least recently used is ended beyond this). */
  SESSION_MAX_COUNT: z.coerce.number().int().min(1).default(10_000),

  /** The daemons' screen in pixels, `<width>x<height>`: the canvas habits are drawn on. */
  CONSOLE_SCREEN_SIZE: z
    .string()
    .regex(/^\d{1,5}x\d{1,5}$/, 'WIDTHxHEIGHT, e.g. 1080x1920')
    .transform((text) => {
      const [width, height] = text.split('x').map(Number) as [number, number];
      return { width, height };
    })
    .default({ width: 1080, height: 1920 }),

  LOG_LEVEL: logLevel,
});

export type ConsoleConfig = z.infer<typeof schema>;

/**
 * Parses and checks the console's environment. Throws StartupError for an invalid variable, for a
 * provider configured twice or not at all, and for a real provider without a client secret.
 */
export function loadConsoleConfig(env: NodeJS.ProcessEnv): ConsoleConfig {
  const config = parseConfig(schema, env);
  if (config.OIDC_ISSUER && config.DEV_OIDC_ISSUER) throw new StartupError('invalid configuration: OIDC_ISSUER and DEV_OIDC_ISSUER exclude each other');
  if (!config.OIDC_ISSUER && !config.DEV_OIDC_ISSUER) throw new StartupError('invalid configuration: OIDC_ISSUER is required (or DEV_OIDC_ISSUER for the development provider)');
  if (config.OIDC_ISSUER && !config.CONSOLE_OIDC_CLIENT_SECRET) throw new StartupError('invalid configuration: CONSOLE_OIDC_CLIENT_SECRET is required with OIDC_ISSUER');
  if (config.DEV_OIDC_ISSUER && !config.DEV_OPERATOR_PASSWORD) throw new StartupError('invalid configuration: DEV_OPERATOR_PASSWORD is required with DEV_OIDC_ISSUER');
  if (Boolean(config.TLS_CERT_FILE) !== Boolean(config.TLS_KEY_FILE)) throw new StartupError('invalid configuration: TLS_CERT_FILE and TLS_KEY_FILE go together');
  return config;
}

/** The origin browsers reach the console at. */
export const publicOrigin = (config: ConsoleConfig): string =>
  new URL(config.CONSOLE_PUBLIC_URL ?? `${config.TLS_CERT_FILE ? 'https' : 'http'}://${config.CONSOLE_HTTP_ADDR}`).origin;
