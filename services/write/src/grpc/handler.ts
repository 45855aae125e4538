import { status, type handleServerStreamingCall, type handleUnaryCall, type MethodDefinition, type ServerWritableStream } from '@grpc/grpc-js';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { MethodRecorder, ServiceMetrics } from '@titanbot/service-kit/metrics';
import { UnknownDataKeyError, type DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import type { Logger } from 'pino';
import type { DomainSettings, UseCaseContext } from '../app/context.js';
import { takeWriteLock } from '../db/write-lock.js';
import type { Authenticator, Principal } from './auth.js';
import { mapError } from './errors.js';

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
}

export interface UnaryOptions<Req> {
  /** Write calls run in one transaction holding the write lock; read calls in none. */
  write: boolean;
  /** AIP-155: the request's `request_id`; a repeat returns the stored first response. */
  requestId?: (req: Req) => string;
}

/**
 * The one wrapper for unary handlers: authorize, fork the EntityManager, run the use case (in a
 * transaction for writes), map errors, record the call's metrics and log one line (method, code,
 * ms). Unknown errors become INTERNAL; their cause goes to the log only. Request and response
 * bodies are never logged.
 */
export function unary<Req, Res>(
  rt: Runtime,
  method: MethodDefinition<Req, Res>,
  options: UnaryOptions<Req>,
  run: (ctx: UseCaseContext, req: Req, principal: Principal) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  const recorder = rt.metrics.rpc(method.path);
  return (call, callback) => {
    const started = performance.now();
    const now = rt.clock();
    const execute = async (): Promise<Res> => {
      const principal = await rt.auth.authorize(call.metadata, method.path, now);
      const em = rt.orm.em.fork();
      if (!options.write) return run({ em, now, settings: rt.settings }, call.request, principal);
      return em.transactional(async (tx) => {
        await takeWriteLock(tx);
        const ctx = { em: tx, now, settings: rt.settings };
        const requestId = options.requestId?.(call.request);
        if (!requestId) return run(ctx, call.request, principal);
        const stored: { response: Buffer }[] = await tx.execute(
          'select response from request_ids where method = ? and request_id = ?',
          [method.path, requestId],
        );
        // Stored sealed: a CreateAccount response carries the account's password.
        if (stored[0]) return method.responseDeserialize(Buffer.from(rt.keyring.open(stored[0].response.toString(), 'request_ids.response'), 'base64'));
        const response = await run(ctx, call.request, principal);
        await tx.execute('insert into request_ids (method, request_id, response) values (?, ?, ?)', [
          method.path,
          requestId,
          Buffer.from(rt.keyring.seal(method.responseSerialize(response).toString('base64'), 'request_ids.response')),
        ]);
        return response;
      });
    };
    // A row sealed under a key another replica just added: learn the key and run the call again.
    const attempt = (): Promise<Res> =>
      execute().catch(async (err: unknown) => {
        if (!(err instanceof UnknownDataKeyError)) throw err;
        await rt.keyring.refresh();
        return execute();
      });
    attempt().then(
      (response) => {
        logCall(rt.logger, recorder, method.path, status.OK, started);
        callback(null, response);
      },
      (err: unknown) => {
        const mapped = mapError(err);
        logCall(rt.logger, recorder, method.path, mapped.error.code, started, mapped.cause);
        callback(mapped.error);
      },
    );
  };
}

/**
 * The wrapper for server-streaming handlers: authorize, run `stream` until it returns or the
 * call is cancelled, map errors, record metrics and log one line when the stream ends.
 */
export function serverStream<Req, Res>(
  rt: Runtime,
  method: MethodDefinition<Req, Res>,
  stream: (call: ServerWritableStream<Req, Res>, principal: Principal) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  const recorder = rt.metrics.rpc(method.path);
  return (call) => {
    const started = performance.now();
    rt.auth
      .authorize(call.metadata, method.path, rt.clock())
      .then((principal) => stream(call, principal))
      .then(
        () => {
          logCall(rt.logger, recorder, method.path, call.cancelled ? status.CANCELLED : status.OK, started);
          if (!call.cancelled) call.end();
        },
        (err: unknown) => {
          const mapped = mapError(err);
          logCall(rt.logger, recorder, method.path, mapped.error.code, started, mapped.cause);
          if (!call.cancelled) call.emit('error', mapped.error);
        },
      );
  };
}

/** Counts and times a finished call (`started`: performance.now() ms) and logs it. */
function logCall(logger: Logger, recorder: MethodRecorder, method: string, code: status, started: number, cause?: unknown): void {
  const elapsedMs = performance.now() - started;
  recorder.record(code, elapsedMs / 1000);
  const ms = Math.round(elapsedMs * 10) / 10;
  if (cause !== undefined) logger.error({ method, code: status[code], ms, err: cause }, 'rpc failed');
  else logger.info({ method, code: status[code], ms }, 'rpc');
}
