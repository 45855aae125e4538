import { z } from 'zod';
import { DEFAULT_STREAM_LIMITS } from './grpc-server.js';
import { StartupError } from './process.js';

const DURATION = /^(\d+)(ms|s|m|h|d)?$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * The one duration syntax of every setting and flag: "500ms", "30s", "10m", "24h", "30d", or a
 * number of seconds. Returns milliseconds, or undefined when `text` is not a duration.
 */
export function parseDurationMs(text: string): number | undefined {
  const match = DURATION.exec(text);
  return match ? Number(match[1]) * UNIT_MS[(match[2] ?? 's') as keyof typeof UNIT_MS] : undefined;
}

/** An environment duration (parseDurationMs) -> milliseconds. */
export const duration = z
  .string()
  .regex(DURATION, 'a duration such as 500ms, 30s, 10m, 24h or 30d')
  .transform((text) => parseDurationMs(text)!);

/** "1048576", "512KiB", "256MiB", "2GiB" -> bytes. */
export const byteSize = z
  .string()
  .regex(/^\d+(KiB|MiB|GiB)?$/, 'a size such as 1048576, 512KiB, 256MiB or 2GiB')
  .transform((text) => {
    const [, n, unit] = /^(\d+)(KiB|MiB|GiB)?$/.exec(text)!;
    return Number(n) * (unit ? { KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[unit as 'KiB' | 'MiB' | 'GiB'] : 1);
  });

export const port = z.coerce.number().int().min(0).max(65535);

/** "true" or "false" (exactly; anything else is a configuration error). */
export const flag = z.enum(['true', 'false']).transform((v) => v === 'true');

/** The gRPC listener's stream limits, the same settings in both services (grpc-server.ts). */
export const grpcServerLimits = {
  /** HTTP/2 streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); a client queues the rest. */
  GRPC_MAX_CONCURRENT_STREAMS: z.coerce.number().int().min(1).default(DEFAULT_STREAM_LIMITS.maxConcurrentStreams),
  /** A call whose request message has not arrived this long after it opened is ended DEADLINE_EXCEEDED. */
  GRPC_REQUEST_MESSAGE_TIMEOUT: duration.default(DEFAULT_STREAM_LIMITS.requestMessageTimeoutMs),
};

export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');

/**
 * Parses `env` with `schema` once, at start-up. Throws a StartupError listing every invalid
 * variable (names and problems, never values: some are secrets).
 */
export function parseConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new StartupError(`invalid configuration: ${problems}`);
  }
  return parsed.data;
}
