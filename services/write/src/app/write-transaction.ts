import type { Em } from '../db/orm.js';
import { findStoredResponse, storeResponse } from '../db/request-ids.js';
import { tagFeedEvents, takeWriteLock } from '../db/write-lock.js';
import { inSpan, traceparentOf, tracerOf, tracingEnabled } from '@titanbot/service-kit/tracing';

const TRACER = tracerOf('write');

/**
 * Runs `work` in one transaction that first takes the global write lock (db/write-lock.ts), on a
 * transaction-scoped EntityManager; commits when it resolves, rolls back when it throws. With
 * tracing on, its feed events carry the call's trace context.
 */
export function inWriteTransaction<T>(em: Em, work: (tx: Em) => Promise<T>): Promise<T> {
  const run = (): Promise<T> =>
    em.transactional(async (tx) => {
      await takeWriteLock(tx);
      const traceparent = tracingEnabled() ? traceparentOf() : '';
      if (traceparent) await tagFeedEvents(tx, traceparent);
      return work(tx);
    });
  // Traced: the transaction (lock wait, work, commit) is its own span, and its feed events name it.
  return tracingEnabled() ? inSpan(TRACER, 'write.transaction', run) : run();
}

/** How a stored first response is kept and read back (sealed: a CreateAccount response holds a password). */
export interface ResponseCodec<Res> {
  encode(response: Res): Buffer;
  decode(stored: Buffer): Res;
}

/**
 * AIP-155 inside the caller's write transaction: the stored first response of (method,
 * requestId) if there is one; otherwise `run`'s response, stored in the same transaction so that
 * a rollback forgets it too.
 */
export async function onceByRequestId<Res>(tx: Em, method: string, requestId: string, codec: ResponseCodec<Res>, run: () => Promise<Res>): Promise<Res> {
  const stored = await findStoredResponse(tx, method, requestId);
  if (stored) return codec.decode(stored);
  const response = await run();
  await storeResponse(tx, method, requestId, codec.encode(response));
  return response;
}
