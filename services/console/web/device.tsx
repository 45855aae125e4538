import { ActivityType } from '@titanbot/contracts/es/titanbot/admin/v1/device_service_pb';
import type { DaemonToken } from '@titanbot/contracts/es/titanbot/admin/v1/daemon_token_service_pb';
import { useRoute } from 'preact-iso';
import { useRef, useState } from 'preact/hooks';
import { api, explain } from './api';
import { Failure, stateLabel } from './fleet';
import { Time, Version } from './format';
import { REFRESH_MS, usePolled } from './poll';
import { useMay } from './session';

/** Log lines and status changes shown on a device's page, newest first. */
const RECENT_LOGS = 20;
const RECENT_CHANGES = 20;

const ACTIVITIES: Record<ActivityType, string> = { [ActivityType.UNSPECIFIED]: '—', [ActivityType.ROWGPLAY]: 'ROWGPLAY', [ActivityType.AJAGPLAY]: 'AJAGPLAY' };

/**
 * A device's page (`/devices/<uuid>`): its settings, accounts and SSH switch, what its daemon
 * holds and its status history (refreshed every REFRESH_MS), its daemon tokens and its recent
 * logs. Issuing and revoking tokens are offered to the roles that may.
 */
export function DevicePage() {
  const { params } = useRoute();
  const uuid = params.uuid!;
  const may = useMay();
  const device = usePolled(() => api.devices.getDevice({ uuid }), uuid);
  const status = usePolled(() => api.fleet.listDeviceStatuses({ deviceUuid: uuid, pageSize: 1 }), uuid, REFRESH_MS);
  const tokens = usePolled(() => api.tokens.listDaemonTokens({ deviceUuid: uuid, pageSize: 100 }), uuid);
  const logs = usePolled(() => api.logs.listLogs({ deviceUuid: uuid, pageSize: RECENT_LOGS }), uuid, REFRESH_MS);
  const history = usePolled(() => api.fleet.listDeviceStatusChanges({ deviceUuid: uuid, pageSize: RECENT_CHANGES }), uuid, REFRESH_MS);
  const [notice, setNotice] = useState<{ text: string; error?: boolean }>();
  const [issued, setIssued] = useState<string>();

  if (device.error) return <p role="alert">{device.error}</p>;
  if (!device.data) return <p aria-busy="true">Loading the device…</p>;
  const d = device.data;
  const s = status.data?.deviceStatuses[0];

  const issue = async () => {
    try {
      const res = await api.tokens.issueDaemonToken({ deviceUuid: uuid });
      setIssued(res.token);
      setNotice({ text: `Issued token ${res.daemonToken?.prefix ?? ''}` });
      tokens.reload();
    } catch (err) {
      setNotice({ text: explain(err), error: true });
    }
  };
  const revoke = async (token: DaemonToken) => {
    try {
      await api.tokens.revokeDaemonToken({ uuid: token.uuid });
      setNotice({ text: `Revoked token ${token.prefix} and the tokens rotated from it` });
      tokens.reload();
    } catch (err) {
      setNotice({ text: explain(err), error: true });
    }
  };

  return (
    <>
      <nav aria-label="breadcrumb">
        <ul>
          <li>
            <a href="/">Fleet</a>
          </li>
          <li>Device {d.physicalId}</li>
        </ul>
      </nav>
      <h1>
        Device {d.physicalId} <small><code>{d.uuid}</code></small>
      </h1>
      {notice && <p role={notice.error ? 'alert' : 'status'}>{notice.text}</p>}
      {issued && <IssuedToken token={issued} onClose={() => setIssued(undefined)} />}

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
        <section aria-labelledby="settings-heading">
          <h2 id="settings-heading">Settings and accounts</h2>
          <dl>
            <dt>Active</dt>
            <dd>{d.isActive ? 'yes' : 'no'}</dd>
            <dt>Activity</dt>
            <dd>{ACTIVITIES[d.activityType]}</dd>
            <dt>Accounts (logical ids)</dt>
            <dd>{d.accountLogicalIds.length ? d.accountLogicalIds.join(', ') : 'none bound'}</dd>
            <dt>Current account</dt>
            <dd>{d.currentAccountLogicalId ?? 'none'}</dd>
            {/* Its keys are not fetched: GetDeviceSsh answers with the private key too, which the page must not hold. */}
            <dt>SSH</dt>
            <dd>{d.isSsh ? 'enabled' : 'disabled'}</dd>
          </dl>
        </section>
      </div>

      <section aria-labelledby="history-heading">
        <h2 id="history-heading">Status history</h2>
        {history.error && <p role="alert">{history.error}</p>}
        {history.data && history.data.deviceStatusChanges.length === 0 && <p>No report yet: entries appear when the daemon installs a version or fails to.</p>}
        {history.data && history.data.deviceStatusChanges.length > 0 && (
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
        )}
      </section>

      <section aria-labelledby="tokens-heading">
        <h2 id="tokens-heading">Daemon tokens</h2>
        {may('DaemonTokenService/IssueDaemonToken') && <button onClick={() => void issue()}>Issue a token</button>}
        {tokens.error && <p role="alert">{tokens.error}</p>}
        {tokens.data && tokens.data.daemonTokens.length === 0 && <p>No token yet: this device’s daemon cannot sync until one is issued.</p>}
        {tokens.data && tokens.data.daemonTokens.length > 0 && (
          <table class="striped">
            <thead>
              <tr>
                <th scope="col">Prefix</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">Revoked</th>
                <th scope="col">Kind</th>
                {may('DaemonTokenService/RevokeDaemonToken') && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {tokens.data.daemonTokens.map((t) => (
                <tr key={t.uuid}>
                  <td>
                    <code>{t.prefix}</code>
                  </td>
                  <td>
                    <Time value={t.createTime} />
                  </td>
                  <td>
                    <Time value={t.expireTime} />
                  </td>
                  <td>
                    <Time value={t.revokeTime} />
                  </td>
                  <td>{t.legacy ? 'legacy' : t.rotatedFromUuid ? 'rotated' : 'issued'}</td>
                  {may('DaemonTokenService/RevokeDaemonToken') && (
                    <td>{!t.revokeTime && <ConfirmButton label="Revoke" question={`Revoke token ${t.prefix}? The daemon using it, and any token rotated from it, is refused from now on.`} onConfirm={() => revoke(t)} />}</td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section aria-labelledby="logs-heading">
        <h2 id="logs-heading">Recent logs</h2>
        {logs.error && <p role="alert">{logs.error}</p>}
        {logs.data && logs.data.logEntries.length === 0 && <p>No log lines from this device.</p>}
        {logs.data && logs.data.logEntries.length > 0 && (
          <table class="striped logs">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Line</th>
              </tr>
            </thead>
            <tbody>
              {logs.data.logEntries.map((l) => (
                <tr key={String(l.id)}>
                  <td>
                    <Time value={l.logTime} />
                  </td>
                  <td>
                    <code>{l.line}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}

/** A newly issued token, shown once: it is not kept anywhere and cannot be shown again. */
function IssuedToken({ token, onClose }: { token: string; onClose: () => void }) {
  const [copied, setCopied] = useState(false);
  return (
    <article aria-labelledby="issued-heading">
      <h2 id="issued-heading">New daemon token</h2>
      <p>Copy it now: it is shown only this once.</p>
      <label>
        Token
        <input readOnly value={token} onFocus={(e) => e.currentTarget.select()} />
      </label>
      <div role="group">
        <button onClick={() => void navigator.clipboard.writeText(token).then(() => setCopied(true))}>{copied ? 'Copied' : 'Copy'}</button>
        <button class="secondary" onClick={onClose}>
          Done
        </button>
      </div>
    </article>
  );
}

/** A destructive action behind a dialog that names what it does; focus returns to the button. */
function ConfirmButton({ label, question, onConfirm }: { label: string; question: string; onConfirm: () => Promise<void> }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  return (
    <>
      <button class="secondary" onClick={() => dialog.current?.showModal()}>
        {label}
      </button>
      <dialog ref={dialog} aria-label={label}>
        <article>
          <p>{question}</p>
          <footer>
            <button class="secondary" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
            <button
              aria-busy={busy}
              onClick={async () => {
                setBusy(true);
                await onConfirm();
                setBusy(false);
                dialog.current?.close();
              }}
            >
              {label}
            </button>
          </footer>
        </article>
      </dialog>
    </>
  );
}
