import { status, type Deadline, type handleServerStreamingCall, type handleUnaryCall, type Metadata, type MethodDefinition, type ServerWritableStream } from '@grpc/grpc-js';
import type { ChangeFeedServiceClient } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { hashDaemonToken, isWellFormedDaemonToken, SHOWN_PREFIX_CHARS } from '@titanbot/service-kit/daemon-token';
import type { MethodRecorder, ServiceMetrics } from '@titanbot/service-kit/metrics';
import { ApiError, statusError, type StatusError } from '@titanbot/service-kit/status';
import type { Logger } from 'pino';
import type { ExportCache } from '../export/cache.js';
import type { HotExports } from '../export/hot-exports.js';
import type { ReadModel, TokenRecord } from '../store/read-model.js';
import type { LogThrottle, RateLimiter } from './rate-limit.js';

/** Why a daemon call failed authentication: the label of its counter and warn line. */
export type AuthFailureReason = 'missing' | 'malformed' | 'unknown' | 'expired' | 'revoked';

/** Counts of calls refused before reaching a handler, every one of them (for metrics). */
export interface ReadCounters {
  authFailures: Record<AuthFailureReason, number>;
  /** Calls refused RESOURCE_EXHAUSTED by the per-token rate limit. */
  rateLimited: number;
}

/** All counters at zero. */
export const newReadCounters = (): ReadCounters => ({
  authFailures: { missing: 0, malformed: 0, unknown: 0, expired: 0, revoked: 0 },
  rateLimited: 0,
});

/** What every daemon API handler needs, built once in main.ts. */
export interface ReadRuntime {
  model: ReadModel;
  exports: ExportCache;
  /** Export files held in memory as encoded chunk messages. */
  hotExports: HotExports;
  logger: Logger;
  /** The write service's feed API, for the calls forwarded on a daemon's behalf. */
  feed: ChangeFeedServiceClient;
  /** Metadata carrying the reader credential. */
  readerMetadata: () => Metadata;
  /** Injectable clock, ms since the epoch: tests move time. */
  clock: () => number;
  /** Aborted on shutdown: long-lived streams end. */
  shutdown: AbortSignal;
  settings: {
    backendPublicKey: string;
    sshServerName: string;
    sshServerIp: string;
    sshServerCommonPort: number;
    exportChunkBytes: number;
    forwardTimeoutMs: number;
  };
  /** Live figures for logs and metrics. */
  gauges: { activeDownloads: number; activeWatches: number };
  /** Per daemon token (by uuid): DAEMON_RPS calls per second, DAEMON_BURST at once. */
  limiter: RateLimiter;
  /** Throttles the warn lines of refused calls, keyed by cause, so a flood cannot flood the logs. */
  refusalLog: LogThrottle;
  counters: ReadCounters;
  /** Where every finished call is counted and timed. */
  metrics: ServiceMetrics;
}

/** The caller: a usable daemon token (its plaintext kept only for forwarding RotateToken). */
export interface DaemonPrincipal {
  token: TokenRecord;
  plaintext: string;
  /** Hex SHA-256 of `plaintext`: the token's key in the read model. */
  hash: string;
}

/** A status the write service answered, passed on to the daemon as it is. */
export class ForwardedError extends Error {
  constructor(readonly status: StatusError) {
    super(status.details);
    this.name = 'ForwardedError';
  }
}

/**
 * The daemon behind `x-api-key`, from memory (one lookup). Errors: UNAUTHENTICATED for no key,
 * a malformed one (rejected by its checksum before any lookup), an unknown, expired or revoked
 * token; an admin or reader credential is never accepted here (DOMAIN.md "Who may call what").
 * Each failure is counted in `rt.counters.authFailures` and logged (throttled) with the reason
 * and, for a well-formed token only, its shown prefix: never the presented value.
 */
export function authenticate(rt: ReadRuntime, metadata: Metadata, method: string): DaemonPrincipal {
  const key = metadata.get('x-api-key')[0];
  if (typeof key !== 'string' || key === '') throw authFailure(rt, method, 'missing');
  let hash = knownTokenHashes.get(key);
  if (hash === undefined) {
    if (!isWellFormedDaemonToken(key)) throw authFailure(rt, method, 'malformed');
    hash = hashDaemonToken(key);
  }
  // Looked up on every call, so revocation, expiry and deletion take effect at once.
  const token = rt.model.tokenByHash(hash);
  if (!token) throw authFailure(rt, method, 'unknown', key);
  rememberTokenHash(key, hash);
  if (token.revoked) throw authFailure(rt, method, 'revoked', key);
  if (rt.clock() >= token.expireTime) throw authFailure(rt, method, 'expired', key);
  return { token, plaintext: key, hash };
}

/** How many presented tokens keep their hash in `knownTokenHashes`. */
const KNOWN_TOKEN_HASHES = 4096;

/**
 * Presented token -> its SHA-256 (hex), for tokens the read model knew when presented: a daemon
 * polls with the same token thousands of times, and the checksum and SHA-256 were the largest
 * part of a CheckVersion's own work. Caching the hash, not the TokenRecord, keeps the per-call
 * lookup in the read model, so a revoked, expired or deleted token is refused on its next call.
 * Only known tokens enter (a flood of well-formed made-up tokens cannot evict the fleet's), and
 * the oldest entry leaves when full. The hash is a pure function of the token, so one cache
 * serves every runtime in the process. It holds plaintext tokens in memory, as a call does anyway.
 */
const knownTokenHashes = new Map<string, string>();

function rememberTokenHash(key: string, hash: string): void {
  if (knownTokenHashes.has(key)) return;
  if (knownTokenHashes.size >= KNOWN_TOKEN_HASHES) knownTokenHashes.delete(knownTokenHashes.keys().next().value!);
  knownTokenHashes.set(key, hash);
}

function authFailure(rt: ReadRuntime, method: string, reason: AuthFailureReason, wellFormedKey?: string): ApiError {
  rt.counters.authFailures[reason]++;
  const suppressed = rt.refusalLog.admit(reason);
  if (suppressed >= 0) {
    const tokenPrefix = wellFormedKey?.slice(0, SHOWN_PREFIX_CHARS);
    rt.logger.warn({ method, reason, tokenPrefix, suppressed }, 'daemon authentication failed');
  }
  // One answer for every reason: the caller learns nothing about which tokens exist.
  return new ApiError(status.UNAUTHENTICATED, 'UNAUTHENTICATED', 'missing, malformed, unknown, expired or revoked daemon token');
}

/**
 * Authenticates (see `authenticate`), then takes one call from the token's rate-limit bucket.
 * Errors: UNAUTHENTICATED; RESOURCE_EXHAUSTED with ErrorInfo reason RATE_LIMITED and a RetryInfo
 * delay (the time until the bucket holds one call again) when the token is over DAEMON_RPS /
 * DAEMON_BURST. Allocates nothing beyond `authenticate` when the call is admitted.
 */
export function admit(rt: ReadRuntime, metadata: Metadata, method: string): DaemonPrincipal {
  const principal = authenticate(rt, metadata, method);
  const waitMs = rt.limiter.take(principal.token.uuid);
  if (waitMs === 0) return principal;
  rt.counters.rateLimited++;
  const suppressed = rt.refusalLog.admit('rate_limited');
  if (suppressed >= 0) rt.logger.warn({ method, token: principal.token.uuid, suppressed }, 'daemon token rate limited');
  throw new ApiError(status.RESOURCE_EXHAUSTED, 'RATE_LIMITED', `too many calls with this daemon token; retry in ${waitMs} ms`, [], waitMs);
}

function mapError(err: unknown): { error: StatusError; cause?: unknown } {
  if (err instanceof ApiError) return { error: err.toStatusError() };
  if (err instanceof ForwardedError) return { error: err.status };
  return { error: statusError(status.INTERNAL, 'internal error', 'INTERNAL'), cause: err };
}

/**
 * The wrapper for unary daemon RPCs: authenticate and rate-limit (`admit`), run, map errors, record
 * the call's metrics, log one line (method, code, ms) at `level` (hot calls log successes at debug;
 * calls refused by `admit` at debug too, since `admit` logs them throttled). Synchronous results
 * are answered in the same tick. Unknown errors become INTERNAL; their cause goes to the log only.
 */
export function unary<Req, Res>(
  rt: ReadRuntime,
  method: MethodDefinition<Req, Res>,
  run: (req: Req, principal: DaemonPrincipal, deadline: Deadline) => Res | Promise<Res>,
  level: 'info' | 'debug' = 'info',
): handleUnaryCall<Req, Res> {
  const recorder = rt.metrics.rpc(method.path);
  const log = new CallLog(rt.logger, recorder, method.path);
  // The synchronous path (CheckVersion) allocates no closures: they are made only for a promise.
  return (call, callback) => {
    const started = performance.now();
    let principal: DaemonPrincipal;
    try {
      principal = admit(rt, call.metadata, method.path);
    } catch (err) {
      const mapped = mapError(err);
      log.finish(mapped.error.code, started, 'debug', mapped.cause);
      callback(mapped.error);
      return;
    }
    let result: Res | Promise<Res>;
    try {
      result = run(call.request, principal, call.getDeadline());
    } catch (err) {
      const mapped = mapError(err);
      log.finish(mapped.error.code, started, 'info', mapped.cause);
      callback(mapped.error);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (response) => {
          log.finish(status.OK, started, level);
          callback(null, response);
        },
        (err: unknown) => {
          const mapped = mapError(err);
          log.finish(mapped.error.code, started, 'info', mapped.cause);
          callback(mapped.error);
        },
      );
      return;
    }
    log.finish(status.OK, started, level);
    callback(null, result);
  };
}

/**
 * The wrapper for server-streaming daemon RPCs: `admit` (opening a stream costs one call of the
 * token's budget), stream, record metrics and log one line when the stream ends (at debug when
 * `admit` refused it).
 */
export function serverStream<Req, Res>(
  rt: ReadRuntime,
  method: MethodDefinition<Req, Res>,
  stream: (call: ServerWritableStream<Req, Res>, principal: DaemonPrincipal) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  const log = new CallLog(rt.logger, rt.metrics.rpc(method.path), method.path);
  return (call) => {
    const started = performance.now();
    let admitted = false;
    Promise.resolve()
      .then(() => {
        const principal = admit(rt, call.metadata, method.path);
        admitted = true;
        return stream(call, principal);
      })
      .then(
        () => {
          log.finish(call.cancelled ? status.CANCELLED : status.OK, started, 'info');
          if (!call.cancelled) call.end();
        },
        (err: unknown) => {
          const mapped = mapError(err);
          log.finish(mapped.error.code, started, admitted ? 'info' : 'debug', mapped.cause);
          if (!call.cancelled) call.emit('error', mapped.error);
        },
      );
  };
}

/** Whether a logger writes `info` and `debug` lines, kept current by its `level-change` event. */
interface LevelFlags {
  info: boolean;
  debug: boolean;
}

/** One LevelFlags (and one listener) per logger, shared by every method's CallLog. */
const levelFlagsByLogger = new WeakMap<Logger, LevelFlags>();

function levelFlags(logger: Logger): LevelFlags {
  let flags = levelFlagsByLogger.get(logger);
  if (!flags) {
    const current: LevelFlags = (flags = { info: false, debug: false });
    const refresh = (): void => {
      current.info = logger.isLevelEnabled('info');
      current.debug = logger.isLevelEnabled('debug');
    };
    refresh();
    // pino children inherit their parent's emitter: any level change refreshes, which is harmless.
    logger.on('level-change', refresh);
    levelFlagsByLogger.set(logger, flags);
  }
  return flags;
}

/**
 * Counts, times and logs the finished calls of one method. Whether `info` and `debug` lines are
 * wanted is read from flags kept current by the logger's `level-change` event, not worked out
 * for every call.
 */
class CallLog {
  private readonly levels: LevelFlags;

  constructor(
    private readonly logger: Logger,
    private readonly recorder: MethodRecorder,
    private readonly method: string,
  ) {
    this.levels = levelFlags(logger);
  }

  /** Counts and times a finished call (`started`: performance.now() ms) and logs it at `level`. */
  finish(code: status, started: number, level: 'info' | 'debug', cause?: unknown): void {
    const elapsedMs = performance.now() - started;
    this.recorder.record(code, elapsedMs / 1000);
    if (cause !== undefined) {
      this.logger.error({ method: this.method, code: status[code], ms: Math.round(elapsedMs * 10) / 10, err: cause }, 'rpc failed');
    } else if (this.levels[level]) {
      this.logger[level]({ method: this.method, code: status[code], ms: Math.round(elapsedMs * 10) / 10 }, 'rpc');
    }
  }
}
