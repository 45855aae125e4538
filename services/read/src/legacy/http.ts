import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import send from '@fastify/send';
import { nextEmpireTime } from '@titanbot/service-kit/empire-time';
import { DomainError } from '@titanbot/service-kit/errors';
import { StartupError } from '@titanbot/service-kit/process';
import { errorReason } from '@titanbot/service-kit/status';
import { isLoopback } from '@titanbot/service-kit/tls';
import { injectTraceparent } from '@titanbot/service-kit/tracing';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { validate as isUuid } from 'uuid';
import { EXPORT_FILE_NAME } from '../export/build.js';
import { daemonPrincipal } from '../grpc/auth.js';
import type { DaemonPrincipal, ReadRuntime } from '../grpc/runtime.js';
import { unseal } from '../grpc/unseal.js';
import { accountDto, deviceDto, legionDto, sshDto, uuidMap } from './dto.js';
import { HttpProblem, problem } from './problem.js';

/** Where the legacy surface listens, and how (LEGACY_HTTP_ADDR, TLS_* and ALLOW_PLAINTEXT). */
export interface LegacyHttpSettings {
  address: string;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  allowPlaintext: boolean;
}

/** A running legacy HTTP listener. */
export interface LegacyHttp {
  /** host:port it is bound to. */
  address: string;
  close(): Promise<void>;
}

/** Lines per IngestLogs call: the feed API's limit. */
const LINES_PER_CALL = 1_000;
/** The longest log line the daemon API accepts (characters). */
const MAX_LINE_CHARS = 16_384;

/**
 * Every route of the original's API (LEGACY.md §2.5) and the methods it answers; a path in none
 * is 404, a method not listed is 405, both before the key is looked at, as the original routed.
 */
const ORIGINAL_ROUTES: readonly [RegExp, readonly string[]][] = [
  [/^\/daemon\/devices$/, ['GET', 'POST']],
  [/^\/daemon\/devices\/[^/]+$/, ['GET', 'PATCH', 'DELETE']],
  [/^\/daemon\/devices\/[^/]+\/ssh$/, ['GET']],
  [/^\/daemon\/accounts$/, ['GET', 'POST']],
  [/^\/daemon\/accounts\/[^/]+$/, ['GET', 'PATCH', 'DELETE']],
  [/^\/daemon\/db$/, ['GET']],
  [/^\/daemon\/db\/checksum$/, ['GET']],
  [/^\/daemon\/backend\/public-key$/, ['GET']],
  [/^\/daemon\/empire-dates$/, ['GET', 'POST']],
  [/^\/daemon\/empire-dates\/[^/]+$/, ['GET', 'DELETE']],
  [/^\/daemon\/empire-dates-next$/, ['GET']],
  [/^\/daemon\/legions$/, ['GET', 'POST']],
  [/^\/daemon\/legions\/[^/]+$/, ['GET', 'PATCH', 'DELETE']],
  [/^\/daemon\/habits$/, ['GET', 'POST']],
  [/^\/daemon\/habits\/[^/]+$/, ['GET', 'PATCH', 'DELETE']],
  [/^\/daemon\/tokens$/, ['GET', 'POST', 'DELETE']],
  [/^\/daemon\/tokens\/[^/]+$/, ['GET', 'DELETE']],
  [/^\/daemon\/logs$/, ['GET', 'POST', 'DELETE']],
  [/^\/daemon\/logs\/bulk$/, ['POST']],
  [/^\/daemon\/health-check$/, ['GET']],
];

/** A daemon route's handler; `param` is the path segment its pattern captures (a uuid), if any. */
type Handler = (rt: ReadRuntime, principal: DaemonPrincipal, request: FastifyRequest, reply: FastifyReply, param: string) => Promise<unknown>;

/**
 * The routes a daemon may call (LEGACY.md §2.1 rules 2–4, 6, 8, 10, 12, 14), by method and path.
 * Everything else of the original is an admin route: a daemon token gets 403 there, as it did.
 * Least privilege holds here as on the gRPC API: a token sees its own device's data only.
 */
const DAEMON_ROUTES: readonly [string, RegExp, Handler][] = [
  ['GET', /^\/daemon\/devices$/, devices],
  ['GET', /^\/daemon\/accounts$/, accounts],
  ['GET', /^\/daemon\/db\/checksum$/, checksum],
  ['GET', /^\/daemon\/db$/, database],
  ['GET', /^\/daemon\/devices\/([^/]+)\/ssh$/, ssh],
  ['GET', /^\/daemon\/backend\/public-key$/, async (rt, _p, _req, reply) => json(reply, 200, { public_key: rt.settings.backendPublicKey })],
  ['GET', /^\/daemon\/empire-dates-next$/, nextEmpireDate],
  ['GET', /^\/daemon\/legions\/([^/]+)$/, legion],
  ['POST', /^\/daemon\/logs$/, log],
  ['POST', /^\/daemon\/logs\/bulk$/, logBulk],
];

/**
 * Starts the original system's daemon-facing HTTP/1.1 API (LEGACY.md §2) on `settings.address`,
 * for daemons of that system, from the same read model and export cache as the gRPC API (no
 * PostgreSQL). HTTPS from TLS_CERT_FILE/TLS_KEY_FILE (read at start); plaintext only on loopback
 * unless `allowPlaintext`. Throws StartupError for plaintext off loopback.
 */
export async function startLegacyHttp(rt: ReadRuntime, settings: LegacyHttpSettings, logger: Logger): Promise<LegacyHttp> {
  const tls = settings.certFile && settings.keyFile ? { key: readFileSync(settings.keyFile), cert: readFileSync(settings.certFile) } : undefined;
  if (!tls && !isLoopback(settings.address)) {
    if (!settings.allowPlaintext) throw new StartupError(`refusing to serve the legacy HTTP API in plaintext on ${settings.address}: set TLS_CERT_FILE and TLS_KEY_FILE, or ALLOW_PLAINTEXT=true`);
    logger.warn({ address: settings.address }, 'ALLOW_PLAINTEXT: legacy HTTP API without TLS on a non-loopback address');
  }
  // Room for a bulk of 1,000 lines of 16 KiB, the most one WriteLogs call takes.
  const app = Fastify({ logger: false, exposeHeadRoutes: false, bodyLimit: 20 * 1024 * 1024, ...(tls ? { https: tls } : {}) });
  // What the framework refuses itself (a body over the limit, a malformed URL) is problem+json too.
  app.setErrorHandler((err: { statusCode?: number; message: string }, _request, reply) => problem(reply, err.statusCode && err.statusCode < 500 ? err.statusCode : 500, err.message));
  // The original never looked at Content-Type: every body is text, parsed by the route.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.all('/*', (request, reply) => dispatch(rt, request, reply, logger));
  app.all('/', (request, reply) => dispatch(rt, request, reply, logger));
  const [host, port] = [settings.address.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''), Number(/:(\d+)$/.exec(settings.address)?.[1] ?? 0)];
  await app.listen({ host, port });
  const bound = app.server.address() as { address: string; port: number };
  return { address: `${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`, close: () => app.close() };
}

/** Routing, then authentication, then access, then the handler: the original's order (LEGACY.md §2.1). */
async function dispatch(rt: ReadRuntime, request: FastifyRequest, reply: FastifyReply, logger: Logger): Promise<unknown> {
  const pathname = request.url.split('?')[0]!;
  const method = request.method === 'HEAD' ? 'GET' : request.method;
  const route = ORIGINAL_ROUTES.find(([pattern]) => pattern.test(pathname));
  const where = `${request.method} http://${request.headers.host ?? 'localhost'}${pathname}`;
  if (!route) return problem(reply, 404, `No route found for "${where}"`);
  if (!route[1].includes(method)) return problem(reply, 405, `No route found for "${where}": Method Not Allowed (Allow: ${route[1].join(', ')})`);
  let principal: DaemonPrincipal;
  try {
    principal = daemonPrincipal(rt, `legacy ${request.method} ${route[0].source}`, request.headers['x-api-key'], 'legacy');
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    // The original answered 401 with an empty text/html body, never problem+json.
    return reply.code(401).header('content-type', 'text/html; charset=UTF-8').send('');
  }
  // HEAD matched no daemon rule in the original (they list GET only), so it fell to "admin only".
  let handler: Handler | undefined;
  let param = '';
  for (const [m, pattern, h] of request.method === 'HEAD' ? [] : DAEMON_ROUTES) {
    const match = m === request.method ? pattern.exec(pathname) : null;
    if (match) [handler, param] = [h, match[1] ?? ''];
  }
  if (!handler) return problem(reply, 403, 'Access Denied.');
  const waitMs = rt.limiter.take(principal.token.uuid);
  if (waitMs > 0) {
    rt.counters.rateLimited++;
    return problem(reply.header('retry-after', String(Math.ceil(waitMs / 1000))), 429, 'Too many requests for this token; retry later.');
  }
  try {
    return await handler(rt, principal, request, reply, param);
  } catch (err) {
    if (err instanceof HttpProblem) return problem(reply, err.status, err.message, err.errors);
    // A dependency that is down (data keys, the write service, PostgreSQL behind it): retry later.
    if (err instanceof DomainError && err.kind === 'unavailable') {
      return problem(reply.header('retry-after', String(Math.ceil((err.retryDelayMs ?? 1_000) / 1000))), 503, err.message);
    }
    logger.error({ err, route: where }, 'legacy HTTP request failed');
    return problem(reply, 500, 'Internal Server Error');
  }
}

/** A compact JSON body; sent as bytes, so the framework adds no charset (the original sent none). */
function json(reply: FastifyReply, code: number, body: unknown): FastifyReply {
  return reply.code(code).header('content-type', 'application/json').header('cache-control', 'no-cache, private').send(Buffer.from(JSON.stringify(body)));
}

/**
 * A query integer as the original read it (PHP `(int)` of the raw text): absent → undefined,
 * `12abc` → 12, `""` or `abc` → 0; given twice or as an array → 400.
 */
function queryInt(request: FastifyRequest, name: string): number | undefined {
  const query = request.query as Record<string, unknown>;
  if (Object.keys(query).some((k) => k.startsWith(`${name}[`))) throw new HttpProblem(400, `Query parameter "${name}" must be a single value.`);
  const raw = query[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') throw new HttpProblem(400, `Query parameter "${name}" must be a single value.`);
  const match = /^\s*[+-]?\d+/.exec(raw);
  return match ? Number.parseInt(match[0], 10) : 0;
}

/** A path uuid as the original parsed it (ramsey: any case, braces, `urn:uuid:`, or 32 bare hex digits); 422 otherwise. */
function pathUuid(raw: string): string {
  const text = decodeURIComponent(raw).toLowerCase().replace(/^urn:uuid:/, '').replace(/^\{(.*)\}$/, '$1');
  const canonical = /^[0-9a-f]{32}$/.test(text) ? text.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5') : text;
  if (!isUuid(canonical)) throw new HttpProblem(422, `Invalid UUID string: ${decodeURIComponent(raw)}`);
  return canonical;
}

/** The scope for a `logical_id` query: absent = global; another device's account → 403. */
function scopeOf(rt: ReadRuntime, principal: DaemonPrincipal, request: FastifyRequest): number {
  const logicalId = queryInt(request, 'logical_id');
  const scope = rt.model.scopeFor(principal.token.deviceUuid, logicalId);
  if (scope === undefined) throw new HttpProblem(403, 'Access Denied.');
  rt.statuses.contact(principal.token.deviceUuid, scope);
  return scope;
}

async function devices(rt: ReadRuntime, principal: DaemonPrincipal, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const physicalId = queryInt(request, 'physical_id');
  const device = rt.queries.device(principal.token.deviceUuid);
  const shown = device && (physicalId === undefined || physicalId === device.physicalId) ? [device] : [];
  return json(reply, 200, { uuid_to_device_map: uuidMap(shown.map(deviceDto)) });
}

async function accounts(rt: ReadRuntime, principal: DaemonPrincipal, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const logicalId = queryInt(request, 'logical_id');
  const own = rt.queries.accounts(principal.token.deviceUuid).filter((a) => logicalId === undefined || a.logicalId === logicalId);
  const dtos = await Promise.all(own.map(async (a) => accountDto(a, await unseal(rt, a.sealedGooglePassword, 'accounts.google_password'))));
  return json(reply, 200, { uuid_to_account_map: uuidMap(dtos) });
}

/** The scope's version: it changes exactly when the file the daemon would download does. */
async function checksum(rt: ReadRuntime, principal: DaemonPrincipal, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  return json(reply, 200, { checksum: rt.model.versions.version(scopeOf(rt, principal, request)) });
}

/**
 * The scope's daemon database as the original served it: `application/vnd.sqlite3`, an attachment
 * named titanbotd.sqlite, Content-Length, Last-Modified, `Accept-Ranges: bytes` and single
 * `Range` requests (206, or 416 past the end) by @fastify/send. Unlike the original's file made
 * per request, ours is the cached export of the version, so a resumed range continues the same bytes.
 */
async function database(rt: ReadRuntime, principal: DaemonPrincipal, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const file = await rt.exports.latest(scopeOf(rt, principal, request));
  const sent = await send(request.raw, `/${path.basename(file.path)}`, { root: path.dirname(file.path), etag: false, cacheControl: false, contentType: false, dotfiles: 'deny' });
  if (sent.type === 'file' || sent.statusCode === 416) {
    reply.code(sent.statusCode).headers(sent.headers);
    if (sent.type !== 'file') return reply.send('');
    return reply
      .header('content-type', 'application/vnd.sqlite3')
      .header('content-disposition', `attachment; filename=${EXPORT_FILE_NAME}`)
      .header('cache-control', 'public')
      .send(sent.stream);
  }
  // The file was evicted between the lookup and the read: the daemon retries.
  throw new HttpProblem(503, 'the export was replaced while it was being sent; retry');
}

async function ssh(rt: ReadRuntime, principal: DaemonPrincipal, _request: FastifyRequest, reply: FastifyReply, param: string): Promise<unknown> {
  const uuid = pathUuid(param);
  const device = rt.queries.device(principal.token.deviceUuid);
  const record = uuid === principal.token.deviceUuid ? rt.queries.ssh(uuid) : undefined;
  // Another device's uuid is answered as the original answered an unknown one: nothing to learn.
  if (!device || !record) throw new HttpProblem(404, `DeviceRepository with uuid ${uuid} is not found`);
  return json(reply, 200, { ssh: sshDto(device, record, await unseal(rt, record.sealedPrivateKey, 'sshes.private_key'), rt.settings) });
}

async function legion(rt: ReadRuntime, principal: DaemonPrincipal, _request: FastifyRequest, reply: FastifyReply, param: string): Promise<unknown> {
  const uuid = pathUuid(param);
  const found = rt.queries.legion(uuid);
  if (!found || !rt.queries.legionIsOfDevice(principal.token.deviceUuid, uuid)) throw new HttpProblem(404, `LegionRepository with uuid ${uuid} is not found`);
  return json(reply, 200, { legion: legionDto(found) });
}

async function nextEmpireDate(rt: ReadRuntime, _p: DaemonPrincipal, _req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const next = nextEmpireTime(rt.queries.empireDates(), new Date(rt.clock()));
  return json(reply, 200, { unix_timestamp: next ? Math.floor(next.getTime() / 1000) : null });
}

/** The request's JSON body as the original required it (LEGACY.md §2.3): an object or array, else 400. */
function jsonBody(request: FastifyRequest): Record<string, unknown> {
  const text = typeof request.body === 'string' ? request.body : '';
  if (text.trim() === '') throw new HttpProblem(400, 'Request body is empty.');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpProblem(400, 'Could not decode request body.');
  }
  if (body === null || typeof body !== 'object') throw new HttpProblem(400, 'Could not decode request body.');
  return body as Record<string, unknown>;
}

/** One log message: a string of at most 16,384 characters; anything else is 422 naming `field`. */
function message(value: unknown, field: string): string {
  if (value === undefined || value === null) throw new HttpProblem(422, `${field}: This value should not be null.`, { [field]: ['This value should not be null.'] });
  if (typeof value !== 'string') throw new HttpProblem(422, `${field}: This value should be of type string.`, { [field]: ['This value should be of type string.'] });
  if (value.length > MAX_LINE_CHARS) throw new HttpProblem(422, `${field}: at most ${MAX_LINE_CHARS} characters.`, { [field]: [`This value is too long. It should have ${MAX_LINE_CHARS} characters or less.`] });
  return value;
}

async function log(rt: ReadRuntime, principal: DaemonPrincipal, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  await ingest(rt, principal, [message(jsonBody(request)['message'], 'message')]);
  return json(reply, 201, []);
}

async function logBulk(rt: ReadRuntime, principal: DaemonPrincipal, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const list = jsonBody(request)['log_dto_list'];
  if (!Array.isArray(list)) throw new HttpProblem(422, 'log_dto_list: This value should be of type array.', { log_dto_list: ['This value should be of type array.'] });
  const lines = list.map((item, i) => message((item as Record<string, unknown> | null)?.['message'], `log_dto_list[${i}].message`));
  await ingest(rt, principal, lines);
  return json(reply, 201, []);
}

/**
 * Stores the lines through the write service (as WriteLogs does), in order, 1,000 per call, each
 * call with its own request_id; answers once they are stored. Errors: DomainError
 * WRITE_SERVICE_UNAVAILABLE (503 with Retry-After); a line the write service refuses → 422.
 */
async function ingest(rt: ReadRuntime, principal: DaemonPrincipal, texts: string[]): Promise<void> {
  const logTime = new Date(rt.clock());
  for (let i = 0; i < texts.length; i += LINES_PER_CALL) {
    const lines = texts.slice(i, i + LINES_PER_CALL).map((line) => ({ line, logTime }));
    await new Promise<void>((resolve, reject) =>
      rt.feed.ingestLogs(
        { deviceUuid: principal.token.deviceUuid, lines, requestId: randomUUID() },
        injectTraceparent(rt.readerMetadata()),
        { deadline: Date.now() + rt.settings.forwardTimeoutMs },
        (err: ServiceError | null) => {
          if (!err) return resolve();
          if (err.code === status.INVALID_ARGUMENT) return reject(new HttpProblem(422, err.details));
          // An UNAVAILABLE with a reason is the write service's own answer (DATABASE_UNAVAILABLE).
          reject(new DomainError(errorReason(err) === 'DATABASE_UNAVAILABLE' ? 'DATABASE_UNAVAILABLE' : 'WRITE_SERVICE_UNAVAILABLE', 'the logs could not be stored now; retry', [], 1_000));
        },
      ),
    );
  }
}
