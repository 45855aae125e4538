import { readFileSync } from 'node:fs';
import { StartupError } from '@titanbot/service-kit/process';
import { isLoopback } from '@titanbot/service-kit/tls';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';

/** Where an HTTP surface of the replica listens, and how (its *_ADDR, TLS_* and ALLOW_PLAINTEXT). */
export interface HttpListenerSettings {
  address: string;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  allowPlaintext: boolean;
}

/**
 * The TLS key and certificate `settings` name (read now), or undefined for plaintext. Throws
 * StartupError for plaintext on a non-loopback address without `allowPlaintext` (`surface` names the
 * listener in the message); warns when that is allowed.
 */
export function httpTls(surface: string, settings: HttpListenerSettings, logger: Logger): { key: Buffer; cert: Buffer } | undefined {
  const tls = settings.certFile && settings.keyFile ? { key: readFileSync(settings.keyFile), cert: readFileSync(settings.certFile) } : undefined;
  if (!tls && !isLoopback(settings.address)) {
    if (!settings.allowPlaintext) throw new StartupError(`refusing to serve ${surface} in plaintext on ${settings.address}: set TLS_CERT_FILE and TLS_KEY_FILE, or ALLOW_PLAINTEXT=true`);
    logger.warn({ address: settings.address }, `ALLOW_PLAINTEXT: ${surface} without TLS on a non-loopback address`);
  }
  return tls;
}

/** Binds `app` to `address` (host:port, port 0 = any); resolves with the host:port it is bound to. */
export async function listenAt(app: FastifyInstance, address: string): Promise<string> {
  const [host, port] = [address.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''), Number(/:(\d+)$/.exec(address)?.[1] ?? 0)];
  await app.listen({ host, port });
  const bound = app.server.address() as { address: string; port: number };
  return `${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`;
}
