import type { Em } from './orm.js';
import { isoTimestamp } from './sql.js';

/** One audited admin call. */
export interface AuditEvent {
  id: number;
  time: Date;
  /** The JWT's `sub`, `admin-token`, or '' when the caller was not recognised. */
  actorSubject: string;
  /** The JWT's client id; '' otherwise. */
  actorClientId: string;
  /** The gRPC path. */
  method: string;
  /** The resource's uuid (or other key) when the request or response names one; '' otherwise. */
  resource: string;
  requestId: string;
  /** The gRPC status code the call ended with. */
  code: number;
}

/** Appends one event (in the caller's transaction when it has one). */
export async function insertAuditEvent(em: Em, e: Omit<AuditEvent, 'id'>): Promise<void> {
  await em.execute(
    'insert into audit_events (event_time, actor_subject, actor_client_id, method, resource, request_id, code) values (?, ?, ?, ?, ?, ?, ?)',
    [e.time, e.actorSubject, e.actorClientId, e.method, e.resource, e.requestId, e.code],
  );
}

/** Which events a list covers; every field optional. */
export interface AuditFilter {
  actor?: string;
  method?: string;
  resource?: string;
  /** Inclusive. */
  startTime?: Date;
  /** Exclusive. */
  endTime?: Date;
  /** Keyset cursor: events after this id. */
  afterId?: number;
}

/** Up to `limit` events matching `filter`, oldest first. */
export async function selectAuditEvents(em: Em, f: AuditFilter, limit: number): Promise<AuditEvent[]> {
  const knex = em.getKnex();
  const q = knex('audit_events').select('id', knex.raw(isoTimestamp('event_time')), 'actor_subject', 'actor_client_id', 'method', 'resource', 'request_id', 'code');
  if (f.actor) q.where((w) => w.where('actor_subject', f.actor!).orWhere('actor_client_id', f.actor!));
  if (f.method) q.where('method', f.method);
  if (f.resource) q.where('resource', f.resource);
  if (f.startTime) q.where('event_time', '>=', f.startTime);
  if (f.endTime) q.where('event_time', '<', f.endTime);
  if (f.afterId !== undefined) q.where('id', '>', f.afterId);
  const rows: { id: string; event_time: string; actor_subject: string; actor_client_id: string; method: string; resource: string; request_id: string; code: number }[] = await em.execute(
    q.orderBy('audit_events.id').limit(limit),
  );
  return rows.map((r) => ({
    id: Number(r.id),
    time: new Date(r.event_time),
    actorSubject: r.actor_subject,
    actorClientId: r.actor_client_id,
    method: r.method,
    resource: r.resource,
    requestId: r.request_id,
    code: r.code,
  }));
}

/** AUDIT_RETENTION: deletes events older than `before`. */
export async function pruneAuditEvents(em: Em, before: Date): Promise<void> {
  await em.execute('delete from audit_events where event_time < ?', [before]);
}
