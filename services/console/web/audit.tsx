import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { useLocation } from 'preact-iso';
import { api } from './api';
import { Scrolls } from './ui';
import { Time } from './format';
import { FilterForm, Pager, useQueryNavigation } from './paging';
import { usePolled } from './poll';

const PAGE_SIZE = 50;
/** gRPC status code names, as the audit trail stores the numbers. */
const CODES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];
const FIELDS = ['actor', 'method', 'resource', 'start', 'end'] as const;

/** `datetime-local` text (the operator's time zone) as a Timestamp; undefined when empty or invalid. */
const timestampOf = (text: string | undefined) => {
  const date = text ? new Date(text) : undefined;
  return date && !Number.isNaN(date.getTime()) ? timestampFromDate(date) : undefined;
};

/**
 * The audit trail (`/audit`): every admin call with who made it, newest first, filtered by actor,
 * method, resource and time from the URL (`?actor=…&method=…&resource=…&start=…&end=…`).
 */
export function AuditPage() {
  const { query } = useLocation();
  const go = useQueryNavigation('/audit');
  const request = {
    actor: query.actor ?? '',
    method: query.method ?? '',
    resource: query.resource ?? '',
    startTime: timestampOf(query.start),
    endTime: timestampOf(query.end),
    pageToken: query.page_token ?? '',
    pageSize: PAGE_SIZE,
  };
  const events = usePolled(() => api.audit.listAuditEvents(request), JSON.stringify(query));

  return (
    <>
      <h1>Audit trail</h1>
      <FilterForm fields={FIELDS} go={go}>
        <label>
          Actor
          <input name="actor" value={query.actor ?? ''} placeholder="subject or client id" />
        </label>
        <label>
          Method
          <input name="method" value={query.method ?? ''} placeholder="e.g. CreateHabit" />
        </label>
        <label>
          Resource
          <input name="resource" value={query.resource ?? ''} />
        </label>
        <label>
          From
          <input name="start" type="datetime-local" step="1" value={query.start ?? ''} />
        </label>
        <label>
          To
          <input name="end" type="datetime-local" step="1" value={query.end ?? ''} />
        </label>
      </FilterForm>
      {events.error && <p role="alert">{events.error}</p>}
      {events.loading && !events.error && <p aria-busy="true">Loading the audit trail…</p>}
      {events.data && events.data.auditEvents.length === 0 && <p>No call matches these filters.</p>}
      {events.data && events.data.auditEvents.length > 0 && (
        <Scrolls label="Audit events">
          <table class="striped">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Actor</th>
                <th scope="col">Method</th>
                <th scope="col">Resource</th>
                <th scope="col">Result</th>
                <th scope="col">Request id</th>
              </tr>
            </thead>
            <tbody>
              {events.data.auditEvents.map((e) => (
                <tr key={String(e.id)}>
                  <td>
                    <Time value={e.eventTime} />
                  </td>
                  <td title={e.actorClientId ? `client ${e.actorClientId}` : undefined}>{e.actorSubject || e.actorClientId}</td>
                  <td>{e.method.slice(e.method.lastIndexOf('/') + 1)}</td>
                  <td>
                    <code>{e.resource}</code>
                  </td>
                  <td>{CODES[e.code] ?? e.code}</td>
                  <td>
                    <code>{e.requestId}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scrolls>
      )}
      <Pager pageToken={query.page_token} nextPageToken={events.data?.nextPageToken} go={go} />
    </>
  );
}
