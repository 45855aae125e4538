import { status, type Deadline, type handleServerStreamingCall, type handleUnaryCall, type Metadata, type MethodDefinition, type ServerWritableStream } from '@grpc/grpc-js';
import type { ChangeFeedServiceClient } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { hashDaemonToken, isWellFormedDaemonToken, SHOWN_PREFIX_CHARS } from '@titanbot/service-kit/daemon-token';
import type { MethodRecorder, ServiceMetrics } from '@titanbot/service-kit/metrics';
import { ApiError, statusError, type StatusError } from '@titanbot/service-kit/status';
import type { Logger } from 'pino';
import type { ExportCache } from '../export/cache.js';
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
  if (!isWellFormedDaemonToken(key)) throw authFailure(rt, method, 'malformed');
  const token = rt.model.tokenByHash(hashDaemonToken(key));
  if (!token) throw authFailure(rt, method, 'unknown', key);
  if (token.revoked) throw authFailure(rt, method, 'revoked', key);
  if (rt.clock() >= token.expireTime) throw authFailure(rt, method, 'expired', key);
  return { token, plaintext: key };
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
  return (call, callback) => {
    const started = performance.now();
    const fail = (err: unknown, failLevel: 'info' | 'debug' = 'info'): void => {
      const mapped = mapError(err);
      logCall(rt.logger, recorder, method.path, mapped.error.code, started, failLevel, mapped.cause);
      callback(mapped.error);
    };
    const succeed = (response: Res): void => {
      logCall(rt.logger, recorder, method.path, status.OK, started, level);
      callback(null, response);
    };
    let principal: DaemonPrincipal;
    try {
      principal = admit(rt, call.metadata, method.path);
    } catch (err) {
      fail(err, 'debug');
      return;
    }
    try {
      const result = run(call.request, principal, call.getDeadline());
      if (result instanceof Promise) result.then(succeed, fail);
      else succeed(result);
    } catch (err) {
      fail(err);
    }
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
  const recorder = rt.metrics.rpc(method.path);
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
          logCall(rt.logger, recorder, method.path, call.cancelled ? status.CANCELLED : status.OK, started, 'info');
          if (!call.cancelled) call.end();
        },
        (err: unknown) => {
          const mapped = mapError(err);
          logCall(rt.logger, recorder, method.path, mapped.error.code, started, admitted ? 'info' : 'debug', mapped.cause);
          if (!call.cancelled) call.emit('error', mapped.error);
        },
      );
  };
}

/** Counts and times a finished call (`started`: performance.now() ms) and logs it at `level`. */
function logCall(logger: Logger, recorder: MethodRecorder, method: string, code: status, started: number, level: 'info' | 'debug', cause?: unknown): void {
  const elapsedMs = performance.now() - started;
  recorder.record(code, elapsedMs / 1000);
  if (cause !== undefined) {
    logger.error({ method, code: status[code], ms: Math.round(elapsedMs * 10) / 10, err: cause }, 'rpc failed');
  } else if (logger.isLevelEnabled(level)) {
    logger[level]({ method, code: status[code], ms: Math.round(elapsedMs * 10) / 10 }, 'rpc');
  }
}
