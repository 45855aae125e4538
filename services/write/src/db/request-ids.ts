import type { Em } from './orm.js';

/**
 * The AIP-155 `request_ids` store: the first response of a create, by (method, request_id), kept
 * 24 h (pruned by housekeeping). Responses are stored as the caller gives them (sealed: a
 * CreateAccount response carries the account's password).
 */
export async function findStoredResponse(em: Em, method: string, requestId: string): Promise<Buffer | undefined> {
  const rows: { response: Buffer }[] = await em.execute('select response from request_ids where method = ? and request_id = ?', [method, requestId]);
  return rows[0]?.response;
}

/** Stores the first response of (method, request_id), in the caller's transaction. */
export async function storeResponse(em: Em, method: string, requestId: string, response: Buffer): Promise<void> {
  await em.execute('insert into request_ids (method, request_id, response) values (?, ?, ?)', [method, requestId, response]);
}

/** Deletes stored responses created before `before` (AIP-155 replays are honoured for 24 h). */
export async function pruneRequestIds(em: Em, before: Date): Promise<void> {
  await em.execute('delete from request_ids where create_time < ?', [before]);
}
