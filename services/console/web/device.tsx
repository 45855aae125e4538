import { useLocation, useRoute } from 'preact-iso';
import { useState } from 'preact/hooks';
import { api } from './api';
import { Failure, stateLabel } from './fleet';
import { fieldErrors, Input } from './forms';
import { Time, Version } from './format';
import { LogTable } from './logs';
import { REFRESH_MS, usePolled } from './poll';
import { ResourceForm } from './resource';
import { devices } from './resources';
import { useMay } from './session';
import { IssueToken, TokenTable } from './tokens';
import { ConfirmButton, LoadState, useAction, Scrolls } from './ui';

/** Log lines and status changes shown on a device's page, newest first. */
const RECENT_LOGS = 20;
const RECENT_CHANGES = 20;

/**
 * A device's page (`/devices/<uuid>`): what its daemon holds and its status history (refreshed
 * every REFRESH_MS), its settings (edited with its etag), account bindings, SSH keys (the public
 * key only: the console never receives the private one), daemon tokens and newest logs. Each
 * control is offered to the roles that may use it.
 */
export function DevicePage() {
  const { params } = useRoute();
  const { route } = useLocation();
  const uuid = params.uuid!;
  const may = useMay();
  const { run } = useAction();
  const device = usePolled(() => api.devices.getDevice({ uuid }), uuid);
  const status = usePolled(() => api.fleet.listDeviceStatuses({ deviceUuid: uuid, pageSize: 1 }), uuid, REFRESH_MS);
  const tokens = usePolled(() => api.tokens.listDaemonTokens({ deviceUuid: uuid, pageSize: 100 }), uuid);
  const logs = usePolled(() => api.logs.listLogs({ deviceUuid: uuid, pageSize: RECENT_LOGS, orderBy: 'log_time desc' }), uuid, REFRESH_MS);
  const history = usePolled(() => api.fleet.listDeviceStatusChanges({ deviceUuid: uuid, pageSize: RECENT_CHANGES }), uuid, REFRESH_MS);

  if (!device.data) return <LoadState error={device.error} loading={device.loading} what="the device" />;
  const d = device.data;
  const s = status.data?.deviceStatuses[0];

  return (
    <>
      <nav aria-label="breadcrumb">
        <ul>
          <li>
            <a href="/devices">Devices</a>
          </li>
          <li>Device {d.physicalId}</li>
        </ul>
      </nav>
      <h1>
        Device {d.physicalId} <small><code>{d.uuid}</code></small>
      </h1>

      <div class="grid">
        <section aria-labelledby="status-heading">
          <h2 id="status-heading">Daemon</h2>
          {s ? (
            <dl>
              <dt>State</dt>
              <dd>{stateLabel(s.state)}</dd>
              <dt>Scope</dt>
              <dd>{s.logicalId ?? 'global'}</dd>
              <dt>Held version</dt>
              <dd>
                <Version value={s.heldVersion} />
              </dd>
              <dt>Current version</dt>
              <dd>
                <Version value={s.currentVersion} />
              </dd>
              <dt>Last contact</dt>
              <dd>
                <Time value={s.lastContactTime} /> via {s.replica}
              </dd>
              <dt>Install failure</dt>
              <dd>
                <Failure status={s} />
              </dd>
            </dl>
          ) : (
            <p>{status.error ?? 'No replica has heard from this device’s daemon yet.'}</p>
          )}
        </section>
        <section aria-labelledby="accounts-heading">
          <h2 id="accounts-heading">Accounts</h2>
          <dl>
            <dt>Bound (logical ids)</dt>
            <dd>{d.accountLogicalIds.length ? d.accountLogicalIds.map((id, i) => <>{i > 0 && ', '}<a href={`/accounts?logical_id=${id}`}>{id}</a></>) : 'none bound'}</dd>
            <dt>Current account (its scope is synced)</dt>
            <dd>{d.currentAccountLogicalId ?? 'none: the daemon syncs the global scope'}</dd>
          </dl>
          {may('DeviceService/BindAccount') && <BindAccount deviceUuid={uuid} onBound={device.reload} />}
        </section>
      </div>

      <section aria-labelledby="history-heading">
        <h2 id="history-heading">Status history</h2>
        {history.error && <p role="alert">{history.error}</p>}
        {history.data && history.data.deviceStatusChanges.length === 0 && <p>No report yet: entries appear when the daemon installs a version or fails to.</p>}
        {history.data && history.data.deviceStatusChanges.length > 0 && (
          <Scrolls label="Status changes">
            <table class="striped">
              <thead>
                <tr>
                  <th scope="col">Since</th>
                  <th scope="col">Held version</th>
                  <th scope="col">Scope</th>
                  <th scope="col">Install failure</th>
                  <th scope="col">Replica</th>
                </tr>
              </thead>
              <tbody>
                {history.data.deviceStatusChanges.map((c) => (
                  <tr key={String(c.id)}>
                    <td>
                      <Time value={c.changeTime} />
                    </td>
                    <td>
                      <Version value={c.heldVersion} />
                    </td>
                    <td>{c.logicalId ?? 'global'}</td>
                    <td>
                      <Failure status={c} />
                    </td>
                    <td>{c.replica}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scrolls>
        )}
      </section>

      <section aria-labelledby="settings-heading">
        <h2 id="settings-heading">Settings</h2>
        <ResourceForm key={d.etag} r={devices} current={d} onSaved={device.reload} />
      </section>

      <SshKeys deviceUuid={uuid} />

      <section aria-labelledby="tokens-heading">
        <h2 id="tokens-heading">Daemon tokens</h2>
        {may('DaemonTokenService/IssueDaemonToken') && <IssueToken deviceUuid={uuid} onIssued={tokens.reload} />}
        {tokens.error && <p role="alert">{tokens.error}</p>}
        {tokens.data && tokens.data.daemonTokens.length === 0 && <p>No token yet: this device’s daemon cannot sync until one is issued.</p>}
        {tokens.data && tokens.data.daemonTokens.length > 0 && <TokenTable tokens={tokens.data.daemonTokens} reload={tokens.reload} showDevice={false} />}
      </section>

      <section aria-labelledby="logs-heading">
        <h2 id="logs-heading">Newest logs</h2>
        <p>
          <a href={`/logs?device_uuid=${uuid}`}>Search all of this device’s logs</a>
        </p>
        {logs.error && <p role="alert">{logs.error}</p>}
        {logs.data && logs.data.logEntries.length === 0 && <p>No log lines from this device.</p>}
        {logs.data && logs.data.logEntries.length > 0 && <LogTable entries={logs.data.logEntries} showDevice={false} />}
      </section>

      {may('DeviceService/DeleteDevice') && (
        <ConfirmButton
          label="Delete device"
          question={`Delete device ${d.physicalId} (${d.uuid})? ${devices.deleteEffect}`}
          onConfirm={async () => {
            const done = await run(() => api.devices.deleteDevice({ uuid }), () => `Deleted device ${d.physicalId}`);
            if (done.ok) route('/devices');
          }}
        />
      )}
    </>
  );
}

/** Binds an account (by logical id) to the device, making it the current one: its daemon then syncs that scope. */
function BindAccount({ deviceUuid, onBound }: { deviceUuid: string; onBound: () => void }) {
  const [errors, setErrors] = useState<Record<string, string>>({});
  const { busy, run } = useAction();
  return (
    <form
      class="inline-form"
      onSubmit={async (e) => {
        e.preventDefault();
        const logicalId = Number(new FormData(e.currentTarget).get('logical_id'));
        const done = await run(() => api.devices.bindAccount({ deviceUuid, logicalId }), () => `Bound account ${logicalId}: it is the device's current account`);
        setErrors(done.ok ? {} : fieldErrors(done.error));
        if (done.ok) onBound();
      }}
    >
      <Input name="logical_id" label="Bind account (logical id)" type="number" min="1" required error={errors.logical_id} />
      <button type="submit" aria-busy={busy} disabled={busy}>
        Bind
      </button>
    </form>
  );
}

/** The device's SSH tunnel: its public key, port and server; rotating the pair (confirmed). The private key never reaches the page. */
function SshKeys({ deviceUuid }: { deviceUuid: string }) {
  const may = useMay();
  const ssh = usePolled(() => api.devices.getDeviceSsh({ deviceUuid }), deviceUuid);
  const { run } = useAction();
  return (
    <section aria-labelledby="ssh-heading">
      <h2 id="ssh-heading">SSH</h2>
      <LoadState error={ssh.error} loading={ssh.loading} what="the SSH keys" />
      {ssh.data && (
        <dl>
          <dt>Public key</dt>
          <dd>
            <code class="key">{ssh.data.publicKey}</code>
          </dd>
          <dt>Tunnel</dt>
          <dd>
            {ssh.data.serverName} ({ssh.data.serverIp}:{ssh.data.serverCommonPort}), device port {ssh.data.serverDeviceInternalPort}
          </dd>
        </dl>
      )}
      {may('DeviceService/RotateDeviceSsh') && (
        <ConfirmButton
          label="Rotate SSH keys"
          question="Rotate this device's SSH key pair? The old pair is replaced at once: its daemon reads the new one from its replica, and the old key no longer opens the tunnel."
          onConfirm={async () => {
            await run(() => api.devices.rotateDeviceSsh({ deviceUuid }), () => 'Rotated the SSH key pair');
            ssh.reload();
          }}
        />
      )}
    </section>
  );
}
