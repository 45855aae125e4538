import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { status, type ServiceError } from '@grpc/grpc-js';
import send from '@fastify/send';
import { nextEmpireTime } from '@titanbot/service-kit/empire-time';
import { DomainError } from '@titanbot/service-kit/errors';
import { MAX_MESSAGE_BYTES } from '@titanbot/service-kit/grpc-server';
import { MAX_LOG_LINE_CHARS, MAX_LOG_LINES_PER_CALL } from '@titanbot/service-kit/request-checks';
import { errorReason } from '@titanbot/service-kit/status';
import { injectTraceparent } from '@titanbot/service-kit/tracing';
import { unaryCall } from '@titanbot/service-kit/grpc-client';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { validate as isUuid } from 'uuid';
import { EXPORT_FILE_NAME } from '@titanbot/service-kit/daemon-database';
import { chargeLogLines, daemonPrincipal, takeCall } from '../access/principal.js';
import type { DaemonPrincipal, ReadRuntime } from '../access/runtime.js';
import { unseal } from '../access/unseal.js';
import { httpTls, listenAt, type HttpListenerSettings } from '../access/http-listener.js';
import { accountDto, deviceDto, legionDto, sshDto, uuidMap } from './dto.js';
import { HttpProblem, problem, problemBody } from './problem.js';

/** Where the legacy surface listens, and how (LEGACY_HTTP_ADDR, TLS_* and ALLOW_PLAINTEXT). */
export interface LegacyHttpSettings extends HttpListenerSettings {
  /** How long a request (headers and body) may take to arrive, ms (LEGACY_HTTP_REQUEST_TIMEOUT); then 408. */
  requestTimeoutMs: number;
}

/** A running legacy HTTP listener. */
export interface LegacyHttp {
  /** host:port it is bound to. */
  address: string;
  close(): Promise<void>;
}

/**
 * Every route of the original's API (docs/legacy.md §2) and the methods it answers; a path in none
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
 * The routes a daemon may call (docs/legacy.md §2), by method and path.
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
 * Largest body of POST /daemon/logs (bytes): one line of MAX_LOG_LINE_CHARS characters, each
 * escaped as `\uXXXX` (6 bytes) at worst, and its envelope.
 */
const LOG_BODY_BYTES = 6 * MAX_LOG_LINE_CHARS + 1024;
/** Largest body of POST /daemon/logs/bulk (bytes): what one WriteLogs message may carry (4 MiB). */
const BULK_BODY_BYTES = MAX_MESSAGE_BYTES;
/** Largest body of every other request (bytes): none of them reads one. */
const OTHER_BODY_BYTES = 1024;
/** Deepest JSON nesting of a log body: `{"log_dto_list":[{"message":…}]}` is 3; fields the original ignored get room. */
const MAX_JSON_DEPTH = 8;

/** What the gate (`admit`) found for a request that may reach its handler. */
interface Admitted {
  handler: Handler;
  principal: DaemonPrincipal;
  param: string;
}

/**
 * Starts the original system's daemon-facing HTTP/1.1 API (docs/legacy.md) on `settings.address`,
 * for daemons of that system, from the same read model and export cache as the gRPC API (no
 * PostgreSQL). HTTPS from TLS_CERT_FILE/TLS_KEY_FILE (read at start); plaintext only on loopback
 * unless `allowPlaintext`. Limits (docs/architecture.md, "Input limits"): a request (headers and
 * body) must arrive within `settings.requestTimeoutMs` (408); the path and the key are checked
 * before a body is read; bodies are at most LOG_BODY_BYTES on POST /daemon/logs, BULK_BODY_BYTES
 * on /daemon/logs/bulk and OTHER_BODY_BYTES elsewhere (413), and a log body nested deeper than
 * MAX_JSON_DEPTH is 400 before it is parsed. Throws StartupError for plaintext off loopback.
 */
export async function startLegacyHttp(rt: ReadRuntime, settings: LegacyHttpSettings, logger: Logger): Promise<LegacyHttp> {
  const tls = httpTls('the legacy HTTP API', settings, logger);
  // Node looks for requests past their timeout this often (its default, 30 s, would let one live twice as long).
  const serverOptions = { connectionsCheckingInterval: Math.max(50, Math.min(1_000, settings.requestTimeoutMs / 4)) };
  const app = Fastify({
    logger: false,
    exposeHeadRoutes: false,
    bodyLimit: OTHER_BODY_BYTES,
    requestTimeout: settings.requestTimeoutMs,
    // A connection idle this long (a stalled reader of a download) is closed; longer than the
    // request timeout, so a slow request gets its 408 first.
    connectionTimeout: 2 * settings.requestTimeoutMs,
    clientErrorHandler: clientError,
    ...(tls ? { https: { ...tls, ...serverOptions } } : { http: serverOptions }),
  });
  // What the framework refuses itself (a body over the limit, a malformed URL) is problem+json too.
  app.setErrorHandler((err: { statusCode?: number; message: string }, _request, reply) => problem(reply, err.statusCode && err.statusCode < 500 ? err.statusCode : 500, err.message));
  // The original never looked at Content-Type: every body is text, parsed by the route.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  // Routing, the key and access are decided before the body is read (onRequest runs before parsing).
  const admitted = new WeakMap<FastifyRequest, Admitted>();
  app.addHook('onRequest', async (request, reply) => {
    // A refused request's body is not read: the connection goes with it.
    const hasBody = request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined;
    if (hasBody) reply.header('connection', 'close');
    const outcome = admit(rt, request, reply);
    if (outcome === reply) return reply;
    if (hasBody) {
      reply.removeHeader('connection');
      bodyDeadline(request, settings.requestTimeoutMs);
    }
    admitted.set(request, outcome as Admitted);
    return undefined;
  });
  const handle = (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => run(rt, admitted.get(request)!, request, reply, logger);
  app.post('/daemon/logs', { bodyLimit: LOG_BODY_BYTES }, handle);
  app.post('/daemon/logs/bulk', { bodyLimit: BULK_BODY_BYTES }, handle);
  app.all('/*', handle);
  app.all('/', handle);
  return { address: await listenAt(app, settings.address), close: () => app.close() };
}

/**
 * What Node's HTTP parser refuses before the framework sees a request (malformed request line or
 * headers, headers over the size limit, headers that did not arrive within the request timeout),
 * answered as problem+json like every other refusal, then the connection is closed.
 */
function clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return answerAndClose(socket, 408, 'The request did not arrive in time.');
  if (err.code === 'HPE_HEADER_OVERFLOW') return answerAndClose(socket, 431, 'The request headers are too large.');
  answerAndClose(socket, 400, 'The request is malformed.');
}

/**
 * Ends an admitted request whose body has not fully arrived `timeoutMs` after its headers did: 408,
 * then the connection is closed. Node's own request timeout stops at the headers once a request is
 * handed over, so a body sent a byte at a time would hold the connection for ever.
 */
function bodyDeadline(request: FastifyRequest, timeoutMs: number): void {
  const timer = setTimeout(() => {
    if (!request.raw.complete) answerAndClose(request.raw.socket, 408, 'The request body did not arrive in time.');
  }, timeoutMs);
  request.raw.once('end', () => clearTimeout(timer));
  request.raw.once('close', () => clearTimeout(timer));
}

/** Writes a problem+json answer straight to `socket` (no request reached the framework, or it gave up on one) and closes it. */
function answerAndClose(socket: Duplex, status: number, detail: string): void {
  const body = problemBody(status, detail);
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    socket.write(body);
  }
  // Destroyed once written: a client still sending its body must not keep the socket open.
  socket.once('finish', () => socket.destroy());
  socket.end();
}

/**
 * Routing, then authentication, then access, then the rate limit: the original's order (docs/legacy.md
 * §2), all before the body is read. Returns what the handler needs, or `reply` once a refusal
 * is sent: 400 (a second Host header), 404, 405, 401, 429 (failed keys from this address, or the
 * device's rate limit), 403.
 */
function admit(rt: ReadRuntime, request: FastifyRequest, reply: FastifyReply): Admitted | FastifyReply {
  // Two Host headers would let a proxy and this server disagree about whom the request is for.
  if (request.raw.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === 'host').length > 1) return problem(reply, 400, 'More than one Host header.');
  const pathname = request.url.split('?')[0]!;
  const method = request.method === 'HEAD' ? 'GET' : request.method;
  const route = ORIGINAL_ROUTES.find(([pattern]) => pattern.test(pathname));
  const where = `${request.method} ${pathname}`;
  if (!route) return problem(reply, 404, `No route found for "${where}"`);
  if (!route[1].includes(method)) return problem(reply, 405, `No route found for "${where}": Method Not Allowed (Allow: ${route[1].join(', ')})`);
  let principal: DaemonPrincipal;
  try {
    principal = daemonPrincipal(rt, `legacy ${request.method} ${route[0].source}`, request.headers['x-api-key'], 'legacy', requestAddress, request);
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    if (err.reason === 'AUTH_THROTTLED') return retryLater(reply, 429, err);
    // The original answered 401 with an empty text/html body, never problem+json.
    return reply.code(401).header('content-type', 'text/html; charset=UTF-8').send('');
  }
  // HEAD matched no daemon rule in the original (they list GET only), so it fell to "admin only".
  for (const [m, pattern, handler] of request.method === 'HEAD' ? [] : DAEMON_ROUTES) {
    const match = m === request.method ? pattern.exec(pathname) : null;
    if (!match) continue;
    try {
      takeCall(rt, principal, `legacy ${request.method} ${pattern.source}`);
    } catch (err) {
      if (err instanceof DomainError && err.kind === 'exhausted') return retryLater(reply, 429, err);
      throw err;
    }
    return { handler, principal, param: match[1] ?? '' };
  }
  return problem(reply, 403, 'Access Denied.');
}

/** A request's peer address, for the throttle of failed keys. */
const requestAddress = (request: FastifyRequest): string => request.ip;

/** `status` (429 for a spent budget, 503 for a dependency that is down) with Retry-After: the DomainError's RetryInfo delay in whole seconds, at least 1. */
const retryLater = (reply: FastifyReply, status: 429 | 503, err: DomainError): FastifyReply =>
  problem(reply.header('retry-after', String(Math.max(1, Math.ceil((err.retryDelayMs ?? 1_000) / 1000)))), status, err.message);

/** Runs an admitted request's handler, answering its refusals and unavailable dependencies. */
async function run(rt: ReadRuntime, { handler, principal, param }: Admitted, request: FastifyRequest, reply: FastifyReply, logger: Logger): Promise<unknown> {
  try {
    return await handler(rt, principal, request, reply, param);
  } catch (err) {
    if (err instanceof HttpProblem) return problem(reply, err.status, err.message, err.errors);
    if (err instanceof DomainError && err.kind === 'exhausted') return retryLater(reply, 429, err);
    // A dependency that is down (data keys, the write service, PostgreSQL behind it): retry later.
    if (err instanceof DomainError && err.kind === 'unavailable') return retryLater(reply, 503, err);
    logger.error({ err, route: `${request.method} ${request.url.split('?')[0]}` }, 'legacy HTTP request failed');
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
  return json(reply, 200, { checksum: rt.model.versions.contentFor(scopeOf(rt, principal, request), principal.token.deviceUuid).version });
}

/**
 * The scope's daemon database as the original served it: `application/vnd.sqlite3`, an attachment
 * named titanbotd.sqlite, Content-Length, Last-Modified, `Accept-Ranges: bytes` and single
 * `Range` requests (206, or 416 past the end) by @fastify/send. Unlike the original's file made
 * per request, ours is the cached export of the version, so a resumed range continues the same bytes.
 * Once the file's last byte has been sent, the fleet view has the daemon holding that version of
 * that scope, as a ReportStatus would (the original's daemons send none).
 */
async function database(rt: ReadRuntime, principal: DaemonPrincipal, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const file = await rt.exports.latest(scopeOf(rt, principal, request), principal.token.deviceUuid);
  const sent = await send(request.raw, `/${path.basename(file.path)}`, { root: path.dirname(file.path), etag: false, cacheControl: false, contentType: false, dotfiles: 'deny' });
  // If-Match (no ETag is sent, so none matches) or an If-Unmodified-Since before the file: RFC 9110 §13.1.
  if (sent.statusCode === 412) throw new HttpProblem(412, 'The file does not meet the If-Match or If-Unmodified-Since precondition.');
  if (sent.statusCode === 304) return reply.code(304).headers(sent.headers).send('');
  if (sent.type === 'file' || sent.statusCode === 416) {
    reply.code(sent.statusCode).headers(sent.headers);
    if (sent.type !== 'file') return reply.send('');
    // A response that carries the file's last byte, sent whole, completes a download (a resumed one
    // is a Range to the end): from then on the fleet view shows the daemon holding this version.
    const lastByte = sent.statusCode === 200 || String(sent.headers['Content-Range'] ?? '').endsWith(`-${file.sizeBytes - 1}/${file.sizeBytes}`);
    if (lastByte) {
      reply.raw.once('finish', () => rt.statuses.report(principal.token.deviceUuid, file.scope, file.version, file.sha256, 0, ''));
    }
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

/**
 * The request's JSON body as the original required it (docs/legacy.md §3): an object or array, else
 * 400; nested deeper than MAX_JSON_DEPTH is 400 before it is parsed.
 */
function jsonBody(request: FastifyRequest): Record<string, unknown> {
  const text = typeof request.body === 'string' ? request.body : '';
  if (text.trim() === '') throw new HttpProblem(400, 'Request body is empty.');
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) throw new HttpProblem(400, `Request body is nested deeper than ${MAX_JSON_DEPTH} levels.`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpProblem(400, 'Could not decode request body.');
  }
  if (body === null || typeof body !== 'object') throw new HttpProblem(400, 'Could not decode request body.');
  return body as Record<string, unknown>;
}

/**
 * Whether `text` opens more than `max` JSON arrays or objects inside one another, judged by one
 * pass over its characters (brackets inside strings do not count), without building anything:
 * JSON.parse of a 4 MiB body of brackets takes long and builds millions of arrays before it fails.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** One log message: a string of at most 16,384 characters; anything else is 422 naming `field`. */
function message(value: unknown, field: string): string {
  if (value === undefined || value === null) throw new HttpProblem(422, `${field}: This value should not be null.`, { [field]: ['This value should not be null.'] });
  if (typeof value !== 'string') throw new HttpProblem(422, `${field}: This value should be of type string.`, { [field]: ['This value should be of type string.'] });
  if (value.length > MAX_LOG_LINE_CHARS) throw new HttpProblem(422, `${field}: at most ${MAX_LOG_LINE_CHARS} characters.`, { [field]: [`This value is too long. It should have ${MAX_LOG_LINE_CHARS} characters or less.`] });
  return value;
}

async function log(rt: ReadRuntime, principal: DaemonPrincipal, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  await ingest(rt, principal, [message(jsonBody(request)['message'], 'message')], 'message');
  return json(reply, 201, []);
}

/** At most MAX_LOG_LINES_PER_CALL lines (one WriteLogs call's worth), else 422. */
async function logBulk(rt: ReadRuntime, principal: DaemonPrincipal, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const list = jsonBody(request)['log_dto_list'];
  if (!Array.isArray(list)) throw new HttpProblem(422, 'log_dto_list: This value should be of type array.', { log_dto_list: ['This value should be of type array.'] });
  if (list.length > MAX_LOG_LINES_PER_CALL) {
    const description = `This collection should contain ${MAX_LOG_LINES_PER_CALL} elements or less.`;
    throw new HttpProblem(422, `log_dto_list: ${description}`, { log_dto_list: [description] });
  }
  const lines = list.map((item, i) => message((item as Record<string, unknown> | null)?.['message'], `log_dto_list[${i}].message`));
  await ingest(rt, principal, lines, 'log_dto_list');
  return json(reply, 201, []);
}

/**
 * Stores the lines (at most MAX_LOG_LINES_PER_CALL) through the write service in one call with its
 * own request_id, as WriteLogs does, after charging them to the device's log bucket; answers once
 * they are stored. Errors: DomainError LOG_RATE_LIMITED (429 with Retry-After),
 * WRITE_SERVICE_UNAVAILABLE (503 with Retry-After); a line the write service refuses → 422.
 */
async function ingest(rt: ReadRuntime, principal: DaemonPrincipal, texts: string[], field: string): Promise<void> {
  chargeLogLines(rt, principal, texts.length, field);
  const logTime = new Date(rt.clock());
  const lines = texts.map((line) => ({ line, logTime }));
  await unaryCall(rt.feed, rt.feed.ingestLogs, { deviceUuid: principal.token.deviceUuid, lines, requestId: randomUUID() }, injectTraceparent(rt.readerMetadata()), {
    deadline: Date.now() + rt.settings.forwardTimeoutMs,
  }).catch((err: ServiceError) => {
    if (err.code === status.INVALID_ARGUMENT) throw new HttpProblem(422, err.details);
    // An UNAVAILABLE with a reason is the write service's own answer (DATABASE_UNAVAILABLE).
    throw new DomainError(errorReason(err) === 'DATABASE_UNAVAILABLE' ? 'DATABASE_UNAVAILABLE' : 'WRITE_SERVICE_UNAVAILABLE', 'the logs could not be stored now; retry', [], 1_000);
  });
}
