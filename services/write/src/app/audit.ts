import { insertAuditEvent, pruneAuditEvents, selectAuditEvents, type AuditEvent } from '../db/audit-store.js';
import type { Em } from '../db/orm.js';
import { invalid } from '../domain/errors.js';
import { decodePageToken, encodePageToken, pageSize, type Page, type UseCaseContext } from './context.js';

export type { AuditEvent };

/** Records one audited call, in `em`'s transaction when it is in one (a success, with its change). */
export function recordAudit(em: Em, event: Omit<AuditEvent, 'id'>): Promise<void> {
  return insertAuditEvent(em, event);
}

/** ListAuditEvents oldest first. Errors: invalid (page_size, page_token, time range). */
export async function listAuditEvents(
  ctx: UseCaseContext,
  q: { pageSize: number; pageToken: string; actor: string; method: string; resource: string; startTime?: Date; endTime?: Date },
): Promise<Page<AuditEvent>> {
  const size = pageSize(q.pageSize);
  const after = decodePageToken(q.pageToken, (key) => /^\d+$/.test(key));
  if (q.startTime && q.endTime && q.startTime >= q.endTime) throw invalid('end_time', 'must be after start_time');
  const rows = await selectAuditEvents(
    ctx.em,
    { actor: q.actor, method: q.method, resource: q.resource, startTime: q.startTime, endTime: q.endTime, ...(after ? { afterId: Number(after) } : {}) },
    size + 1,
  );
  const items = rows.slice(0, size);
  return { items, nextPageToken: rows.length > size ? encodePageToken(String(items[items.length - 1]!.id)) : '' };
}

/** AUDIT_RETENTION. */
export const pruneAudit = (em: Em, before: Date): Promise<void> => pruneAuditEvents(em, before);
