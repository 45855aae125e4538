import path from 'node:path';
import send from '@fastify/send';
import { SecretStoreUnavailableError } from '@titanbot/service-kit/secrets/secret-store';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { ExportDelta, ExportFile } from '../export/cache.js';
import { EXPORT_MEDIA_TYPE } from '@titanbot/service-kit/daemon-database';
import { httpTls, listenAt, type HttpListenerSettings } from '../access/http-listener.js';
import type { ExportUrlSigner } from '../access/export-urls.js';
import type { ReadRuntime } from '../access/runtime.js';

/** A running HTTP origin. */
export interface ExportOrigin {
  /** host:port it is bound to. */
  address: string;
  close(): Promise<void>;
}

/** What a cache may do with a payload: keep it for a year, never revalidate (its name is its digest). */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** What a refusal or a miss may be kept for: nothing (the next URL may be valid, the file may come). */
const NO_STORE = 'no-store';
const SHA256 = /^[0-9a-f]{64}$/;
const DELTA_MEDIA_TYPE = 'application/vnd.fossil-delta';

/**
 * The replica's HTTP origin of content-addressed downloads (EXPORT_HTTP_ADDR), for a CDN or caching
 * proxy to carry the bytes DownloadExport would stream:
 *
 * - `GET|HEAD /exports/<sha256>`: a whole daemon database (`application/vnd.sqlite3`);
 * - `GET|HEAD /deltas/<base-sha256>/<sha256>`: the Fossil delta from one to the other
 *   (`application/vnd.fossil-delta`);
 *
 * each with the query string of a signed URL (ExportUrlSigner; the CDN forwards it on a miss and
 * leaves it out of its cache key). Answers: 200 or 206 (one `Range`; `Accept-Ranges: bytes`) with
 * `Cache-Control: public, max-age=31536000, immutable` and a strong `ETag` (the digests); 304 for
 * a matching `If-None-Match`; 416 for a range past the end; 403 for a missing, forged or expired
 * signature; 404 for a path of another shape, or for a payload this replica does not keep (evicted,
 * or never built here: the daemon then falls back to DownloadExport); 503 when the secret store
 * is needed for an unknown key and cannot be reached. Refusals carry `Cache-Control: no-store`.
 * Each answer is logged (`export served`: method, path without the query, status, bytes, range),
 * so the access log shows what the CDN fetched from the origin, and counted
 * (export_http_responses_total, export_http_bytes_total).
 */
export async function startExportOrigin(rt: ReadRuntime, signer: ExportUrlSigner, settings: HttpListenerSettings, logger: Logger): Promise<ExportOrigin> {
  const tls = httpTls('the export HTTP origin', settings, logger);
  const app = Fastify({ logger: false, exposeHeadRoutes: true, ...(tls ? { https: tls } : {}) });
  app.addHook('onResponse', async (request, reply) => {
    const status = String(reply.statusCode);
    rt.counters.exportHttp[status] = (rt.counters.exportHttp[status] ?? 0) + 1;
    const bytes = request.method === 'GET' && (reply.statusCode === 200 || reply.statusCode === 206) ? Number(reply.getHeader('content-length') ?? 0) : 0;
    rt.counters.exportHttpBytes += bytes;
    logger.info({ method: request.method, path: request.url.split('?')[0], status: reply.statusCode, bytes, range: request.headers.range }, 'export served');
  });
  const refuse = (reply: FastifyReply, status: number, detail: string): FastifyReply =>
    reply.code(status).header('cache-control', NO_STORE).header('content-type', 'application/problem+json').send({ type: 'about:blank', status, detail });
  app.setNotFoundHandler((_request, reply) => refuse(reply, 404, 'no such path'));
  app.setErrorHandler((err: { statusCode?: number; message: string }, _request, reply) => {
    if (err instanceof SecretStoreUnavailableError) return refuse(reply, 503, 'the secret store cannot be reached to check this signature; retry');
    logger.error({ err }, 'export origin failed');
    return refuse(reply, err.statusCode && err.statusCode < 500 ? err.statusCode : 500, err.statusCode && err.statusCode < 500 ? err.message : 'internal error');
  });

  /** Serves `payload` (looked up after the signature is checked) with `etag`, or refuses. */
  const serve = async (request: FastifyRequest, reply: FastifyReply, lookup: () => ExportFile | ExportDelta | undefined, etag: string, mediaType: string): Promise<unknown> => {
    const at = request.url.indexOf('?');
    const [pathname, query] = at < 0 ? [request.url, ''] : [request.url.slice(0, at), request.url.slice(at + 1)];
    const refusal = await signer.verify(pathname, new URLSearchParams(query));
    if (refusal) return refuse(reply, 403, refusal === 'expired' ? 'the URL has expired; ask DownloadExport for a new one' : `the URL's signature is ${refusal}`);
    const payload = lookup();
    if (!payload) return refuse(reply, 404, 'this replica does not keep that file; download it with DownloadExport');
    reply.header('etag', etag).header('cache-control', IMMUTABLE);
    if (request.headers['if-none-match']?.split(/\s*,\s*/).some((tag) => tag === etag || tag === '*')) return reply.code(304).send();
    const sent = await send(request.raw, `/${path.basename(payload.path)}`, { root: path.dirname(payload.path), etag: false, lastModified: false, cacheControl: false, contentType: false, dotfiles: 'deny' });
    if (sent.type === 'file') return reply.code(sent.statusCode).headers(sent.headers).header('content-type', mediaType).send(sent.stream);
    if (sent.statusCode === 416) return reply.code(416).headers(sent.headers).header('cache-control', NO_STORE).send();
    // Evicted between the lookup and the open: as if it were not kept.
    return refuse(reply, 404, 'this replica does not keep that file; download it with DownloadExport');
  };
  app.get<{ Params: { sha256: string } }>('/exports/:sha256', (request, reply) => {
    const { sha256 } = request.params;
    if (!SHA256.test(sha256)) return refuse(reply, 404, 'no such path');
    return serve(request, reply, () => rt.exports.fileWithSha256(sha256), `"${sha256}"`, EXPORT_MEDIA_TYPE);
  });
  app.get<{ Params: { base: string; sha256: string } }>('/deltas/:base/:sha256', (request, reply) => {
    const { base, sha256 } = request.params;
    if (!SHA256.test(base) || !SHA256.test(sha256)) return refuse(reply, 404, 'no such path');
    return serve(request, reply, () => rt.exports.deltaWithSha256(base, sha256), `"${base}.${sha256}"`, DELTA_MEDIA_TYPE);
  });
  const address = await listenAt(app, settings.address);
  return { address, close: () => app.close() };
}
