import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { LogEntry } from '@titanbot/contracts/es/titanbot/admin/v1/log_service_pb';
import { useLocation } from 'preact-iso';
import { api } from './api';
import { Time } from './format';
import { localDateTime } from './forms';
import { FilterForm, Pager, useQueryNavigation } from './paging';
import { usePolled } from './poll';
import { useMay } from './session';
import { ConfirmButton, LoadState, useAction, Scrolls } from './ui';

/** Lines per page of the logs list. */
const PAGE_SIZE = 100;

/** An ISO instant of the URL as a `datetime-local` value in the operator's time zone. */
const localInput = (iso: string | undefined): string => {
  const d = iso ? new Date(iso) : undefined;
  return d && !Number.isNaN(d.getTime()) ? localDateTime(d) : '';
};
/** A `datetime-local` value (the operator's time zone) as an ISO instant, so a shared URL means the same time everywhere. */
const isoOf = (local: string): string => (local ? new Date(local).toISOString() : '');
const timestamp = (iso: string | undefined) => (iso && !Number.isNaN(new Date(iso).getTime()) ? timestampFromDate(new Date(iso)) : undefined);

/** Log lines, newest first. */
export function LogTable({ entries, showDevice }: { entries: LogEntry[]; showDevice: boolean }) {
  return (
    <Scrolls label="Log lines">
      <table class="striped logs">
        <thead>
          <tr>
            <th scope="col">Time</th>
            {showDevice && <th scope="col">Device</th>}
            <th scope="col">Line</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((l) => (
            <tr key={String(l.id)}>
              <td>
                <Time value={l.logTime} />
              </td>
              {showDevice && (
                <td>
                  <a href={`/devices/${l.deviceUuid}`}>
                    <code>{l.deviceUuid.slice(0, 8)}</code>
                  </a>
                </td>
              )}
              <td>
                <code>{l.line}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Scrolls>
  );
}

/**
 * The daemons' log lines (`/logs?device_uuid=&contains=&since=&until=`, times as ISO instants):
 * newest first, searched and paged on the server; clearing (with a confirmation naming what is
 * deleted) for the roles that may.
 */
export function LogsPage() {
  const { query } = useLocation();
  const go = useQueryNavigation('/logs');
  const may = useMay();
  const logs = usePolled(
    () =>
      api.logs.listLogs({
        deviceUuid: query.device_uuid || undefined,
        contains: query.contains ?? '',
        startTime: timestamp(query.since),
        endTime: timestamp(query.until),
        orderBy: 'log_time desc',
        pageSize: PAGE_SIZE,
        pageToken: query.page_token ?? '',
      }),
    JSON.stringify(query),
  );
  return (
    <>
      <h1>Daemon logs</h1>
      <FilterForm fields={['device_uuid', 'contains', 'since', 'until']} go={go} encode={{ since: isoOf, until: isoOf }}>
        <label>
          Device (uuid)
          <input name="device_uuid" value={query.device_uuid ?? ''} />
        </label>
        <label>
          Line contains
          <input name="contains" value={query.contains ?? ''} />
        </label>
        <label>
          From
          <input name="since" type="datetime-local" value={localInput(query.since)} />
        </label>
        <label>
          Before
          <input name="until" type="datetime-local" value={localInput(query.until)} />
        </label>
      </FilterForm>
      {may('LogService/ClearLogs') && <ClearLogs deviceUuid={query.device_uuid} until={query.until} onCleared={logs.reload} />}
      <LoadState error={logs.error} loading={logs.loading} what="the log lines" />
      {logs.data && logs.data.logEntries.length === 0 && <p>No log line matches. Daemons send theirs as they run; widen the search or check the device's page.</p>}
      {logs.data && logs.data.logEntries.length > 0 && <LogTable entries={logs.data.logEntries} showDevice={!query.device_uuid} />}
      <Pager pageToken={query.page_token} nextPageToken={logs.data?.nextPageToken} go={go} />
    </>
  );
}

/** Clears the lines of the search's device and end time (ClearLogs narrows by these two only), after a confirmation naming them. */
function ClearLogs({ deviceUuid, until, onCleared }: { deviceUuid: string | undefined; until: string | undefined; onCleared: () => void }) {
  const { run } = useAction();
  const what = `${deviceUuid ? `of device ${deviceUuid}` : 'of every device'}${until ? ` logged before ${new Date(until).toLocaleString()}` : ''}`;
  return (
    <p class="clear-logs">
      <ConfirmButton
        label="Clear logs"
        question={`Delete every log line ${what}? The text and start-time filters do not narrow this. It cannot be undone.`}
        onConfirm={async () => {
          await run(() => api.logs.clearLogs({ deviceUuid: deviceUuid || undefined, endTime: timestamp(until) }), (r) => `Deleted ${r.deletedCount} log lines ${what}`);
          onCleared();
        }}
      />{' '}
      <small>Clears the lines {what}.</small>
    </p>
  );
}
