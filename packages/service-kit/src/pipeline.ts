/**
 * The one call pipeline of both services, in the interceptor style of connect-es: a handler is the
 * RPC's own function wrapped by a stack of small steps, each `(next, method) => next'`. The shared
 * steps live here (`observe`: metrics and one log line; `mapErrors`: any failure to a google.rpc
 * status); each service adds its own (authentication, rate limit, transaction). Steps are composed
 * once per method when the server is built, so a call pays only for the steps themselves.
 *
 * A step may answer synchronously: a handler that returns a value (not a promise) is answered in
 * the same tick, and the shared steps allocate no closure for it (the read service's CheckVersion).
 */
import { status, type handleServerStreamingCall, type handleUnaryCall, type MethodDefinition, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, context, trace, type Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { DomainError } from './errors.js';
import type { MethodRecorder, ServiceMetrics } from './metrics.js';
import { checkRequest } from './request-checks.js';
import { statusError, toStatusError, type StatusError } from './status.js';
import { contextFromMetadata, tracingEnabled } from './tracing.js';

/** What every step sees of a call. Services extend it with what their steps set (principal, transaction). */
export interface CallContext {
  /** The gRPC path, `/package.Service/Method`. */
  readonly method: string;
  /** The grpc-js call: metadata, deadline, cancellation (for streams, also the writable side). */
  readonly call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>;
}

/** A handler at any depth of the stack: the RPC's own function, or it wrapped by the steps below. */
export type Next<Req, Res, C extends CallContext> = (req: Req, ctx: C) => Res | Promise<Res>;

/** A method as the steps see it when they are composed: its definition, path and per-method options. */
export interface MethodSpec<O> {
  path: string;
  /** The generated definition: (de)serializers, for steps that store responses. */
  definition: MethodDefinition<unknown, unknown>;
  options: O;
}

/**
 * One step of the pipeline. It returns `next` itself when it has nothing to do for `method`, so a
 * step costs nothing on methods it does not apply to.
 */
export type Step<C extends CallContext, O> = <Req, Res>(next: Next<Req, Res, C>, method: MethodSpec<O>) => Next<Req, Res, C>;

/** A failure on its way out: the status sent to the caller, and the cause that only the log gets. */
export class CallFailure extends Error {
  constructor(
    readonly status: StatusError,
    /** Set for unexpected errors: logged, never sent. */
    override readonly cause?: unknown,
  ) {
    super(status.details);
    this.name = 'CallFailure';
  }
}

/** Maps a thrown error to a status, or returns undefined to leave it to the next mapper. */
export type ErrorMapper = (err: unknown) => CallFailure | undefined;

const isPromise = <T>(value: T | Promise<T>): value is Promise<T> => value instanceof Promise;

/**
 * Turns whatever the steps below throw into a CallFailure: a DomainError into its catalogue
 * status, a service's own errors through `mappers` (first match wins), anything else into
 * INTERNAL with a generic message (the cause goes to the log only).
 */
export function mapErrors<C extends CallContext>(mappers: readonly ErrorMapper[] = []): Step<C, unknown> {
  const toFailure = (err: unknown): CallFailure => {
    if (err instanceof CallFailure) return err;
    if (err instanceof DomainError) return new CallFailure(toStatusError(err));
    for (const map of mappers) {
      const failure = map(err);
      if (failure) return failure;
    }
    return new CallFailure(statusError(status.INTERNAL, 'internal error', 'INTERNAL'), err);
  };
  const rethrow = (err: unknown): never => {
    throw toFailure(err);
  };
  return (next) => (req, ctx) => {
    let result;
    try {
      result = next(req, ctx);
    } catch (err) {
      throw toFailure(err);
    }
    return isPromise(result) ? result.catch(rethrow) : result;
  };
}

/**
 * Rejects a request that did not decode or breaks an input limit (request-checks.ts) with
 * INVALID_ARGUMENT before the steps below it, and so before any database or timer, see it.
 * Synchronous; on a small request it costs a walk of a few fields.
 */
export function checkInput<C extends CallContext>(): Step<C, unknown> {
  return (next) => (req, ctx) => {
    checkRequest(ctx.call.request);
    return next(req, ctx);
  };
}

/**
 * With tracing on (tracing.ts), one SERVER span per call, named by its gRPC path, a child of the
 * caller's `traceparent` when it sent one, with the status code the call ended with. With tracing
 * off, the step returns the handler unchanged: no cost per call. Place right below `observe`.
 */
export function traceCalls<C extends CallContext>(tracer: Tracer): Step<C, unknown> {
  return (next, method) => {
    if (!tracingEnabled()) return next;
    return (req, ctx) => {
      const parent = contextFromMetadata(ctx.call.metadata);
      const span = tracer.startSpan(method.path, { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc' } }, parent);
      const end = (code: status): void => {
        span.setAttribute('rpc.grpc.status_code', code);
        if (code !== status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: status[code] });
        span.end();
      };
      const failed = (err: unknown): never => {
        end(err instanceof CallFailure ? err.status.code : status.INTERNAL);
        throw err;
      };
      let result;
      try {
        result = context.with(trace.setSpan(parent, span), () => next(req, ctx));
      } catch (err) {
        return failed(err);
      }
      if (!isPromise(result)) {
        end(status.OK);
        return result;
      }
      return result.then((response) => {
        end(status.OK);
        return response;
      }, failed);
    };
  };
}

/** Per-method options `observe` reads. */
export interface ObserveOptions {
  /** Level of the line for a successful call (hot calls log at debug). Default info. */
  level?: 'info' | 'debug';
}

/**
 * Records every finished call in `metrics` (by method and status code) and logs one line: method,
 * code, ms; failures with a cause at error with that cause. `quiet(code)` true logs that failure at
 * debug (failures a later step already logged, throttled). Streams that end because the client
 * cancelled count as CANCELLED. Must be the outermost step, with `mapErrors` right below it.
 */
export function observe<C extends CallContext>(logger: Logger, metrics: ServiceMetrics, quiet: (code: status) => boolean = () => false): Step<C, ObserveOptions> {
  const levels = levelFlags(logger);
  return (next, method) => {
    const recorder = metrics.rpc(method.path);
    const okLevel = method.options.level ?? 'info';
    const finish = (code: status, started: number, cause?: unknown): void =>
      logCall(logger, levels, recorder, method.path, code, started, code === status.OK ? okLevel : quiet(code) ? 'debug' : 'info', cause);
    const failed = (started: number, err: unknown): never => {
      const failure = err instanceof CallFailure ? err : new CallFailure(statusError(status.INTERNAL, 'internal error', 'INTERNAL'), err);
      finish(failure.status.code, started, failure.cause);
      throw failure;
    };
    return (req, ctx) => {
      const started = performance.now();
      let result;
      try {
        result = next(req, ctx);
      } catch (err) {
        return failed(started, err);
      }
      if (!isPromise(result)) {
        finish(status.OK, started);
        return result;
      }
      return result.then(
        (response) => {
          finish(ctx.call.cancelled ? status.CANCELLED : status.OK, started);
          return response;
        },
        (err: unknown) => failed(started, err),
      );
    };
  };
}

/** A service's pipeline: its steps, outermost first, and how it makes each call's context. */
export interface Pipeline<C extends CallContext, O> {
  steps: readonly Step<C, O>[];
  context: (method: string, call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>) => C;
}

/**
 * `make` once per service instance (keyed by its runtime object), shared by all its handlers:
 * handlers are built per RPC, the pipeline per service.
 */
export function pipelinePerRuntime<R extends object, C extends CallContext, O>(make: (rt: R) => Pipeline<C, O>): (rt: R) => Pipeline<C, O> {
  const pipelines = new WeakMap<R, Pipeline<C, O>>();
  return (rt) => {
    let pipeline = pipelines.get(rt);
    if (!pipeline) pipelines.set(rt, (pipeline = make(rt)));
    return pipeline;
  };
}

function compose<Req, Res, C extends CallContext, O>(
  pipeline: Pipeline<C, O>,
  definition: MethodDefinition<unknown, unknown>,
  options: O,
  run: Next<Req, Res, C>,
): Next<Req, Res, C> {
  const method: MethodSpec<O> = { path: definition.path, definition, options };
  return pipeline.steps.reduceRight<Next<Req, Res, C>>((next, step) => step(next, method), run);
}

const failureStatus = (err: unknown): StatusError =>
  err instanceof CallFailure ? err.status : statusError(status.INTERNAL, 'internal error', 'INTERNAL');

/**
 * A grpc-js unary handler: `run` wrapped by the pipeline's steps. A synchronous result is answered
 * in the same tick.
 */
export function unaryHandler<Req, Res, C extends CallContext, O>(
  pipeline: Pipeline<C, O>,
  method: MethodDefinition<Req, Res>,
  options: O,
  run: Next<Req, Res, C>,
): handleUnaryCall<Req, Res> {
  const handle = compose(pipeline, method as MethodDefinition<unknown, unknown>, options, run);
  return (call, callback) => {
    let result;
    try {
      result = handle(call.request, pipeline.context(method.path, call as ServerUnaryCall<unknown, unknown>));
    } catch (err) {
      callback(failureStatus(err));
      return;
    }
    if (!isPromise(result)) {
      callback(null, result);
      return;
    }
    result.then(
      (response) => callback(null, response),
      (err: unknown) => callback(failureStatus(err)),
    );
  };
}

/**
 * A grpc-js server-streaming handler: `run` (which writes to the call, honouring backpressure)
 * wrapped by the pipeline's steps; the stream ends when `run` returns, or with the mapped status
 * when it throws (unless the client cancelled first).
 */
export function streamHandler<Req, Res, C extends CallContext, O>(
  pipeline: Pipeline<C, O>,
  method: MethodDefinition<Req, Res>,
  options: O,
  run: Next<ServerWritableStream<Req, Res>, void, C>,
): handleServerStreamingCall<Req, Res> {
  const handle = compose(pipeline, method as MethodDefinition<unknown, unknown>, options, run);
  return (call) => {
    Promise.resolve()
      .then(() => handle(call, pipeline.context(method.path, call as ServerWritableStream<unknown, unknown>)))
      .then(
        () => {
          if (!call.cancelled) call.end();
        },
        (err: unknown) => {
          if (!call.cancelled) call.emit('error', failureStatus(err));
        },
      );
  };
}

/** Whether a logger writes `info` and `debug` lines, kept current by its `level-change` event. */
interface LevelFlags {
  info: boolean;
  debug: boolean;
}

/** One LevelFlags (and one listener) per logger, shared by every method. */
const levelFlagsByLogger = new WeakMap<Logger, LevelFlags>();

/** Asking pino whether a level is enabled on every call was measurable on the hot path. */
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

/** Counts and times a finished call (`started`: performance.now() ms) and logs it at `level`. */
function logCall(
  logger: Logger,
  levels: LevelFlags,
  recorder: MethodRecorder,
  method: string,
  code: status,
  started: number,
  level: 'info' | 'debug',
  cause?: unknown,
): void {
  const elapsedMs = performance.now() - started;
  recorder.record(code, elapsedMs / 1000);
  if (cause !== undefined) logger.error({ method, code: status[code], ms: Math.round(elapsedMs * 10) / 10, err: cause }, 'rpc failed');
  else if (levels[level]) logger[level]({ method, code: status[code], ms: Math.round(elapsedMs * 10) / 10 }, 'rpc');
}
