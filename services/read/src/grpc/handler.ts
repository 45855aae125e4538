import { status, type handleServerStreamingCall, type handleUnaryCall, type Metadata, type MethodDefinition, type ServerWritableStream } from '@grpc/grpc-js';
import type { ChangeFeedServiceClient } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { hashDaemonToken, isWellFormedDaemonToken } from '@titanbot/service-kit/daemon-token';
import { ApiError, statusError, type StatusError } from '@titanbot/service-kit/status';
import type { Logger } from 'pino';
import type { ExportCache } from '../export/cache.js';
import type { ReadModel, TokenRecord } from '../store/read-model.js';

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
 * The daemon behind `x-api-key`, from memory. Errors: UNAUTHENTICATED for no key, a malformed
 * one (rejected by its checksum before any lookup), an unknown, expired or revoked token; an
 * admin or reader credential is never accepted here (DOMAIN.md "Who may call what").
 */
export function authenticate(rt: ReadRuntime, metadata: Metadata): DaemonPrincipal {
  const key = metadata.get('x-api-key')[0];
  if (typeof key === 'string' && isWellFormedDaemonToken(key)) {
    const token = rt.model.usableToken(hashDaemonToken(key), rt.clock());
    if (token) return { token, plaintext: key };
  }
  throw new ApiError(status.UNAUTHENTICATED, 'UNAUTHENTICATED', 'missing, malformed, unknown, expired or revoked daemon token');
}

function mapError(err: unknown): { error: StatusError; cause?: unknown } {
  if (err instanceof ApiError) return { error: err.toStatusError() };
  if (err instanceof ForwardedError) return { error: err.status };
  return { error: statusError(status.INTERNAL, 'internal error', 'INTERNAL'), cause: err };
}

/**
 * The wrapper for unary daemon RPCs: authenticate, run, map errors, log one line (method, code,
 * ms) at `level` (hot calls log successes at debug). Synchronous results are answered in the
 * same tick. Unknown errors become INTERNAL; their cause goes to the log only.
 */
export function unary<Req, Res>(
  rt: ReadRuntime,
  method: MethodDefinition<Req, Res>,
  run: (req: Req, principal: DaemonPrincipal) => Res | Promise<Res>,
  level: 'info' | 'debug' = 'info',
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = performance.now();
    const fail = (err: unknown): void => {
      const mapped = mapError(err);
      logCall(rt.logger, method.path, mapped.error.code, started, 'info', mapped.cause);
      callback(mapped.error);
    };
    const succeed = (response: Res): void => {
      logCall(rt.logger, method.path, status.OK, started, level);
      callback(null, response);
    };
    try {
      const result = run(call.request, authenticate(rt, call.metadata));
      if (result instanceof Promise) result.then(succeed, fail);
      else succeed(result);
    } catch (err) {
      fail(err);
    }
  };
}

/** The wrapper for server-streaming daemon RPCs; logs one line when the stream ends. */
export function serverStream<Req, Res>(
  rt: ReadRuntime,
  method: MethodDefinition<Req, Res>,
  stream: (call: ServerWritableStream<Req, Res>, principal: DaemonPrincipal) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  return (call) => {
    const started = performance.now();
    Promise.resolve()
      .then(() => stream(call, authenticate(rt, call.metadata)))
      .then(
        () => {
          logCall(rt.logger, method.path, call.cancelled ? status.CANCELLED : status.OK, started, 'info');
          if (!call.cancelled) call.end();
        },
        (err: unknown) => {
          const mapped = mapError(err);
          logCall(rt.logger, method.path, mapped.error.code, started, 'info', mapped.cause);
          if (!call.cancelled) call.emit('error', mapped.error);
        },
      );
  };
}

function logCall(logger: Logger, method: string, code: status, started: number, level: 'info' | 'debug', cause?: unknown): void {
  if (cause !== undefined) {
    logger.error({ method, code: status[code], ms: Math.round((performance.now() - started) * 10) / 10, err: cause }, 'rpc failed');
  } else if (logger.isLevelEnabled(level)) {
    logger[level]({ method, code: status[code], ms: Math.round((performance.now() - started) * 10) / 10 }, 'rpc');
  }
}
