import type { handleServerStreamingCall, handleUnaryCall, MethodDefinition, ServerWritableStream } from '@grpc/grpc-js';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { ServiceMetrics } from '@titanbot/service-kit/metrics';
import { checkInput, mapErrors, observe, traceCalls, pipelinePerRuntime, streamHandler, unaryHandler, type CallContext, type ObserveOptions, type Pipeline, type Step } from '@titanbot/service-kit/pipeline';
import { UnknownDataKeyError, type DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import type { Logger } from 'pino';
import { tracerOf } from '@titanbot/service-kit/tracing';
import type { DomainSettings, UseCaseContext } from '../app/context.js';
import type { LogWriter } from '../app/log-writer.js';
import { inWriteTransaction, onceByRequestId, type ResponseCodec } from '../app/write-transaction.js';
import type { Authenticator, Principal } from './auth.js';
import { mapDatabaseErrors } from './errors.js';

/** What every handler needs, built once in main.ts. */
export interface Runtime {
  orm: MikroORM;
  logger: Logger;
  auth: Authenticator;
  settings: DomainSettings;
  /** Injectable clock: tests move time. */
  clock: () => Date;
  /** Seals and opens secret columns. */
  keyring: DataKeyring;
  /** Where every finished call is counted and timed (auth failures show as UNAUTHENTICATED / PERMISSION_DENIED). */
  metrics: ServiceMetrics;
  /** Daemon log lines, written in batches outside the write lock. */
  logs: LogWriter;
}

/** Per-method options of the write service's steps. */
export interface UnaryOptions<Req> extends ObserveOptions {
  /** Write calls run in one transaction holding the write lock; read calls in none. */
  write: boolean;
  /** AIP-155: the request's `request_id`; a repeat returns the stored first response. */
  requestId?: (req: Req) => string;
}

/** A write-service call as its steps and use cases see it. */
export interface WriteCall extends CallContext {
  /** Set by `authenticate`. */
  principal?: Principal;
  /** The use case's context: a forked EntityManager (the transaction's, for writes), the call's clock reading. */
  uc: UseCaseContext;
}

type WriteStep = Step<WriteCall, UnaryOptions<unknown>>;

/** Authorizes the caller against the policy table (UNAUTHENTICATED / PERMISSION_DENIED) before anything runs. */
const authenticate =
  (rt: Runtime): WriteStep =>
  (next) =>
  async (req, ctx) => {
    ctx.principal = await rt.auth.authorize(ctx.call.metadata, ctx.method, ctx.uc.now, ctx.call.getAuthContext().sslPeerCertificate);
    return next(req, ctx);
  };

/** A row sealed under a key another replica just added: learn the key and run the call again. */
const learnDataKeys =
  (rt: Runtime): WriteStep =>
  (next) =>
  (req, ctx) =>
    Promise.resolve(next(req, ctx)).catch(async (err: unknown) => {
      if (!(err instanceof UnknownDataKeyError)) throw err;
      await rt.keyring.refresh();
      ctx.uc = { ...ctx.uc, em: rt.orm.em.fork() };
      return next(req, ctx);
    });

/**
 * Write methods run in one transaction that first takes the global write lock; with a request_id,
 * a repeat answers the stored first response (AIP-155), stored sealed in the same transaction.
 */
const transaction =
  (rt: Runtime): WriteStep =>
  (next, method) => {
    if (!method.options.write) return next;
    const requestIdOf = method.options.requestId;
    const { responseSerialize, responseDeserialize } = method.definition;
    // Stored sealed: a CreateAccount response carries the account's password.
    const codec: ResponseCodec<unknown> = {
      encode: (response) => Buffer.from(rt.keyring.seal(responseSerialize(response).toString('base64'), 'request_ids.response')),
      decode: (stored) => responseDeserialize(Buffer.from(rt.keyring.open(stored.toString(), 'request_ids.response'), 'base64')),
    };
    return (req, ctx) =>
      inWriteTransaction(ctx.uc.em, async (tx) => {
        const inner: WriteCall = { ...ctx, uc: { ...ctx.uc, em: tx } };
        const requestId = requestIdOf?.(req);
        if (!requestId) return next(req, inner);
        return onceByRequestId(tx, method.path, requestId, codec as ResponseCodec<Awaited<ReturnType<typeof next>>>, async () => next(req, inner));
      });
  };

/** The write service's pipeline: observe, trace (when on), map errors (database races and outages too), authenticate, check the input's limits, learn data keys, transaction. */
export function writePipeline(rt: Runtime): Pipeline<WriteCall, UnaryOptions<unknown>> {
  return {
    steps: [observe(rt.logger, rt.metrics), traceCalls(tracerOf('write')), mapErrors(mapDatabaseErrors), authenticate(rt), checkInput(), learnDataKeys(rt), transaction(rt)],
    context: (method, call) => ({ method, call, uc: { em: rt.orm.em.fork(), now: rt.clock(), settings: rt.settings } }),
  };
}

const pipelineOf = pipelinePerRuntime(writePipeline);

/** A unary write-service handler: `run` (a use case call) behind the write pipeline. */
export function unary<Req, Res>(
  rt: Runtime,
  method: MethodDefinition<Req, Res>,
  options: UnaryOptions<Req>,
  run: (ctx: UseCaseContext, req: Req) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return unaryHandler(pipelineOf(rt), method, options as UnaryOptions<unknown>, (req: Req, call: WriteCall) => run(call.uc, req));
}

/** A server-streaming write-service handler: `stream` behind the write pipeline (no transaction). */
export function serverStream<Req, Res>(
  rt: Runtime,
  method: MethodDefinition<Req, Res>,
  stream: (call: ServerWritableStream<Req, Res>) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  return streamHandler(pipelineOf(rt), method, { write: false }, (call: ServerWritableStream<Req, Res>) => stream(call));
}
