import { DeviceState, type DeviceStatus, type FleetSummary } from '@titanbot/contracts/es/titanbot/admin/v1/fleet_service_pb';
import { InstallFailure } from '@titanbot/contracts/es/titanbot/daemon/v1/daemon_service_pb';
import { useLocation } from 'preact-iso';
import { api } from './api';
import { Scrolls } from './ui';
import { durationText, Time, Version } from './format';
import { FilterForm, Pager, useQueryNavigation } from './paging';
import { REFRESH_MS, usePolled } from './poll';

/** Devices per page of the table. */
const PAGE_SIZE = 50;

/** The states in the order the chart and filter show them, with their names in the URL. */
const STATES = [
  { state: DeviceState.CURRENT, key: 'current', label: 'Current' },
  { state: DeviceState.BEHIND, key: 'behind', label: 'Behind' },
  { state: DeviceState.FAILING, key: 'failing', label: 'Failing' },
  { state: DeviceState.OFFLINE, key: 'offline', label: 'Offline' },
] as const;

export const stateLabel = (state: DeviceState): string => STATES.find((s) => s.state === state)?.label ?? 'Unknown';

const FAILURES: Record<InstallFailure, string> = {
  [InstallFailure.UNSPECIFIED]: '',
  [InstallFailure.CHECKSUM_MISMATCH]: 'Checksum mismatch',
  [InstallFailure.DISK_FULL]: 'Disk full',
  [InstallFailure.PERMISSION]: 'Permission denied',
  [InstallFailure.SCHEMA_TOO_NEW]: 'Schema too new',
  [InstallFailure.OTHER]: 'Other',
};

/** The install failure as a short name, with the daemon's message on hover. */
export const Failure = ({ status }: { status: Pick<DeviceStatus, 'failure' | 'failureMessage'> }) =>
  status.failure === InstallFailure.UNSPECIFIED ? <span>—</span> : <span title={status.failureMessage}>{FAILURES[status.failure]}</span>;

/**
 * The fleet page (`/`): the summary as a chart and the devices table, both filtered by the URL
 * (`?state=behind&logical_id=7&replica=…&page_token=…`, so every view is a link) and refreshed
 * every REFRESH_MS without a reload.
 */
export function FleetPage() {
  const { query } = useLocation();
  const go = useQueryNavigation('/');
  const state = STATES.find((s) => s.key === query.state)?.state ?? DeviceState.UNSPECIFIED;
  const logicalId = /^\d+$/.test(query.logical_id ?? '') ? Number(query.logical_id) : undefined;
  const filter = { state, logicalId, replica: query.replica ?? '', pageToken: query.page_token ?? '' };
  const key = JSON.stringify(filter);
  const summary = usePolled(() => api.fleet.getFleetSummary({ logicalId }), String(logicalId), REFRESH_MS);
  const devices = usePolled(() => api.fleet.listDeviceStatuses({ ...filter, pageSize: PAGE_SIZE }), key, REFRESH_MS);


  return (
    <>
      <h1>Fleet</h1>
      <section aria-labelledby="summary-heading">
        <h2 id="summary-heading">Summary{logicalId !== undefined ? ` of scope ${logicalId}` : ''}</h2>
        {summary.error && <p role="alert">{summary.error}</p>}
        {summary.data ? <SummaryChart summary={summary.data} /> : <p aria-busy="true">Loading the summary…</p>}
      </section>
      <section aria-labelledby="devices-heading">
        <h2 id="devices-heading">Devices</h2>
        <FilterForm fields={['state', 'logical_id', 'replica']} go={go}>
          <label>
            State
            <select name="state" value={query.state ?? ''}>
              <option value="">All</option>
              {STATES.map((s) => (
                <option value={s.key}>{s.label}</option>
              ))}
            </select>
          </label>
          <label>
            Scope (logical id)
            <input name="logical_id" inputMode="numeric" pattern="\d*" value={query.logical_id ?? ''} />
          </label>
          <label>
            Replica
            <input name="replica" value={query.replica ?? ''} />
          </label>
        </FilterForm>
        {devices.error && <p role="alert">{devices.error}</p>}
        {devices.loading && !devices.error ? (
          <p aria-busy="true">Loading devices…</p>
        ) : devices.data && devices.data.deviceStatuses.length === 0 ? (
          <p>No device matches. Devices appear here once their daemon has called a replica; clear the filter to see every device.</p>
        ) : (
          devices.data && <DeviceTable rows={devices.data.deviceStatuses} />
        )}
        <Pager pageToken={filter.pageToken} nextPageToken={devices.data?.nextPageToken} go={go} />
      </section>
    </>
  );
}

/** The states as one stacked bar with a legend of counts; the oldest behind device's wait below it. */
function SummaryChart({ summary }: { summary: FleetSummary }) {
  const counts = { current: summary.current, behind: summary.behind, failing: summary.failing, offline: summary.offline };
  const total = summary.devices || 1;
  let x = 0;
  const described = STATES.map((s) => `${counts[s.key]} ${s.label.toLowerCase()}`).join(', ');
  return (
    <figure class="summary">
      <svg viewBox="0 0 1000 40" preserveAspectRatio="none" role="img" aria-label={`${summary.devices} devices: ${described}`}>
        {STATES.map((s) => {
          const width = (counts[s.key] / total) * 1000;
          const bar = <rect class={`state-${s.key}`} x={x} y={0} width={width} height={40} />;
          x += width;
          return bar;
        })}
      </svg>
      <figcaption>
        <ul class="legend">
          <li>
            <strong data-testid="count-devices">{summary.devices}</strong> devices
          </li>
          {STATES.map((s) => (
            <li>
              <span class={`swatch state-${s.key}`} aria-hidden="true" />
              <strong data-testid={`count-${s.key}`}>{counts[s.key]}</strong> {s.label.toLowerCase()}
            </li>
          ))}
          <li>oldest behind: {summary.behind + summary.failing ? durationText(summary.oldestBehind) : 'none'}</li>
        </ul>
      </figcaption>
    </figure>
  );
}

function DeviceTable({ rows }: { rows: DeviceStatus[] }) {
  return (
    <Scrolls label="Devices">
      <table class="striped">
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">State</th>
            <th scope="col">Scope</th>
            <th scope="col">Held version</th>
            <th scope="col">Current version</th>
            <th scope="col">Last contact</th>
            <th scope="col">Replica</th>
            <th scope="col">Install failure</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((s) => (
            <tr key={s.deviceUuid} data-device={s.deviceUuid}>
              <td>
                <a href={`/devices/${s.deviceUuid}`} title={s.deviceUuid}>
                  {/* The uuid's random end: time-ordered uuids (v7) of one batch share their start. */}
                  <code>…{s.deviceUuid.slice(-12)}</code>
                </a>
              </td>
              <td>
                <span class={`badge state-${STATES.find((x) => x.state === s.state)?.key ?? 'unknown'}`}>{stateLabel(s.state)}</span>
              </td>
              <td>{s.logicalId ?? 'global'}</td>
              <td>
                <Version value={s.heldVersion} />
              </td>
              <td>
                <Version value={s.currentVersion} />
              </td>
              <td>
                <Time value={s.lastContactTime} />
              </td>
              <td>{s.replica}</td>
              <td>
                <Failure status={s} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Scrolls>
  );
}
