import type { handleServerStreamingCall, handleUnaryCall, MethodDefinition, ServerWritableStream } from '@grpc/grpc-js';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { ServiceMetrics } from '@titanbot/service-kit/metrics';
import { CallFailure, checkInput, mapErrors, observe, traceCalls, pipelinePerRuntime, streamHandler, unaryHandler, type CallContext, type ObserveOptions, type Pipeline, type Step } from '@titanbot/service-kit/pipeline';
import { UnknownDataKeyError, type DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import type { Logger } from 'pino';
import { tracerOf } from '@titanbot/service-kit/tracing';
import { recordAudit } from '../app/audit.js';
import { withholdSecrets } from './secrets-by-role.js';
import type { DomainSettings, UseCaseContext } from '../app/context.js';
import { principalOf } from '@titanbot/service-kit/policy';
import { status } from '@grpc/grpc-js';
import type { LogWriter } from '../app/log-writer.js';
import { inWriteTransaction, onceByRequestId, type ResponseCodec } from '../app/write-transaction.js';
import { CallerRefused, type Authenticator, type Principal } from './auth.js';
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
  /** AIP-163: the request's `validate_only`; when true the call runs whole and is rolled back. */
  validateOnly?: (req: Req) => boolean;
}

/** A write-service call as its steps and use cases see it. */
export interface WriteCall extends CallContext {
  /** Set by `authenticate`. */
  principal?: Principal;
  /** The use case's context: a forked EntityManager (the transaction's, for writes), the call's clock reading. */
  uc: UseCaseContext;
}

type WriteStep = Step<WriteCall, UnaryOptions<unknown>>;

/** Sends secrets in a response only to callers whose role may see them (secrets-by-role.ts). */
const withholding =
  (): WriteStep =>
  (next) =>
  async (req, ctx) =>
    withholdSecrets(ctx.principal, ctx.method, await next(req, ctx));

/**
 * Authorizes the caller against the policy table (UNAUTHENTICATED / PERMISSION_DENIED) before
 * anything runs. A refused caller who was identified is still set as `ctx.principal`, so the
 * audit step names them.
 */
const authenticate =
  (rt: Runtime): WriteStep =>
  (next) =>
  async (req, ctx) => {
    try {
      ctx.principal = await rt.auth.authorize(ctx.call.metadata, ctx.method, ctx.uc.now, ctx.call.getAuthContext().sslPeerCertificate);
    } catch (err) {
      if (err instanceof CallerRefused) ctx.principal = err.principal;
      throw err;
    }
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
 * A validate-only request (AIP-163) runs the same way and is rolled back: its request_id is not
 * stored, nothing reaches the feed, and its answer (or refusal) is the one the call would give.
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
    const audited = isAudited(method.path);
    const validateOnlyOf = method.options.validateOnly;
    return async (req, ctx) => {
      if (validateOnlyOf?.(req)) {
        // Everything a real call does, then a rollback: the answer is the one it would have given.
        const validated = await inWriteTransaction(ctx.uc.em, async (tx) => {
          throw new RolledBack(await next(req, { ...ctx, uc: { ...ctx.uc, em: tx } }));
        }).catch((err: unknown) => {
          if (err instanceof RolledBack) return err;
          throw err;
        });
        return validated.response as Awaited<ReturnType<typeof next>>;
      }
      return inWriteTransaction(ctx.uc.em, async (tx) => {
        const inner: WriteCall = { ...ctx, uc: { ...ctx.uc, em: tx } };
        const requestId = requestIdOf?.(req);
        const response = requestId
          ? await onceByRequestId(tx, method.path, requestId, codec as ResponseCodec<Awaited<ReturnType<typeof next>>>, async () => next(req, inner))
          : await next(req, inner);
        // The audit row commits or rolls back with the change it records.
        if (audited) {
          await recordAudit(tx, { time: ctx.uc.now, ...actorOfEvent(ctx.principal), method: method.path, resource: resourceOf(response, req), requestId: requestId ?? '', code: status.OK });
        }
        return response;
      });
    };
  };

/** Thrown to roll a validate-only call's transaction back, carrying the response it would have had. */
class RolledBack {
  constructor(readonly response: unknown) {}
}

/** Admin methods that change state: everything of the admin API but its Get and List methods. */
const isAudited = (path: string): boolean => principalOf(path) === 'admin' && !/\/(Get|List)[A-Z][^/]*$/.test(path);

/** A value from a refused request, kept only when it is within the input limits (a hostile one is dropped, not stored). */
const withinLimits = (value: string): string => (value.length > 1024 || value.includes('\0') ? '' : value);

/** The resource a call names or creates: the first `uuid` of the response, else of the request (two levels deep). */
function resourceOf(...messages: unknown[]): string {
  for (const m of messages) {
    if (typeof m !== 'object' || m === null) continue;
    const top = m as Record<string, unknown>;
    if (typeof top.uuid === 'string' && top.uuid) return top.uuid;
    for (const v of Object.values(top)) {
      if (typeof v === 'object' && v !== null && typeof (v as { uuid?: unknown }).uuid === 'string' && (v as { uuid: string }).uuid) return (v as { uuid: string }).uuid;
    }
    if (typeof top.deviceUuid === 'string' && top.deviceUuid) return top.deviceUuid;
  }
  return '';
}

/**
 * The audit trail of state-changing admin calls. A write method's success is recorded by the
 * `transaction` step, in the transaction of the change; this step records the successes of the
 * others (rotations) and every refusal or failure, on its own (a database that is down loses
 * that row: it is logged instead). Outside `mapErrors`, so it sees the status code sent.
 */
const audit =
  (rt: Runtime): WriteStep =>
  (next, method) => {
    if (!isAudited(method.path)) return next;
    const requestIdOf = method.options.requestId;
    const validateOnlyOf = method.options.validateOnly;
    const record = async (req: unknown, ctx: WriteCall, response: unknown, code: status): Promise<void> => {
      const requestId = withinLimits(String(requestIdOf?.(req) ?? ''));
      const event = { time: rt.clock(), ...actorOfEvent(ctx.principal), method: method.path, resource: withinLimits(resourceOf(response, req)), requestId, code };
      await recordAudit(rt.orm.em.fork(), event).catch((err: unknown) => rt.logger.error({ err, method: method.path, code }, 'audit: event not stored'));
    };
    return (req, ctx) =>
      // A validate-only call changes nothing: there is nothing to audit.
      validateOnlyOf?.(req) ? next(req, ctx) : Promise.resolve(next(req, ctx)).then(
        async (response) => {
          if (!method.options.write) await record(req, ctx, response, status.OK);
          return response;
        },
        async (err: unknown) => {
          await record(req, ctx, undefined, err instanceof CallFailure ? err.status.code : status.INTERNAL);
          throw err;
        },
      );
  };

/**
 * The actor of a call as the audit trail names it: an operator's subject and client id,
 * `admin-token`, `reader-credential`, `daemon-token` with the token's uuid as client id (a daemon
 * refused on the admin API), or unknown ('') for a caller who was not identified.
 */
function actorOfEvent(principal: Principal | undefined): { actorSubject: string; actorClientId: string } {
  switch (principal?.kind) {
    case 'operator':
      return { actorSubject: principal.subject, actorClientId: principal.clientId };
    case 'admin':
      return { actorSubject: 'admin-token', actorClientId: '' };
    case 'reader':
      return { actorSubject: 'reader-credential', actorClientId: '' };
    case 'daemon':
      return { actorSubject: 'daemon-token', actorClientId: principal.tokenUuid };
    case undefined:
      return { actorSubject: '', actorClientId: '' };
  }
}

/** The write service's pipeline: observe, trace (when on), audit, map errors (database races and outages too), authenticate, check the input's limits, learn data keys, transaction. */
export function writePipeline(rt: Runtime): Pipeline<WriteCall, UnaryOptions<unknown>> {
  return {
    steps: [observe(rt.logger, rt.metrics), traceCalls(tracerOf('write')), audit(rt), mapErrors(mapDatabaseErrors), authenticate(rt), withholding(), checkInput(), learnDataKeys(rt), transaction(rt)],
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
