import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { DaemonToken } from '@titanbot/contracts/es/titanbot/admin/v1/daemon_token_service_pb';
import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';
import { api } from './api';
import { Time } from './format';
import { fieldErrors, Input } from './forms';
import { FilterForm, Pager, useQueryNavigation } from './paging';
import { usePolled } from './poll';
import { useMay } from './session';
import { ConfirmButton, LoadState, ShownOnce, useAction, Scrolls } from './ui';

/** Tokens per page of the tokens list. */
const PAGE_SIZE = 50;

/** A table of daemon tokens, each revocable (with a confirmation naming it) by the roles that may; `reload` after a revocation. */
export function TokenTable({ tokens, reload, showDevice }: { tokens: DaemonToken[]; reload: () => void; showDevice: boolean }) {
  const may = useMay();
  const { run } = useAction();
  const mayRevoke = may('DaemonTokenService/RevokeDaemonToken');
  return (
    <Scrolls label="Daemon tokens">
      <table class="striped">
        <thead>
          <tr>
            <th scope="col">Prefix</th>
            {showDevice && <th scope="col">Device</th>}
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">Revoked</th>
            <th scope="col">Kind</th>
            {mayRevoke && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {tokens.map((t) => (
            <tr key={t.uuid}>
              <td>
                <code>{t.prefix}</code>
              </td>
              {showDevice && (
                <td>
                  <a href={`/devices/${t.deviceUuid}`}>
                    <code>{t.deviceUuid.slice(0, 8)}</code>
                  </a>
                </td>
              )}
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
              {mayRevoke && (
                <td>
                  {!t.revokeTime && (
                    <ConfirmButton
                      label="Revoke"
                      question={`Revoke token ${t.prefix} of device ${t.deviceUuid}? The daemon using it, and any token rotated from it, is refused from now on.`}
                      onConfirm={async () => {
                        await run(() => api.tokens.revokeDaemonToken({ uuid: t.uuid }), () => `Revoked token ${t.prefix} and the tokens rotated from it`);
                        reload();
                      }}
                    />
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </Scrolls>
  );
}

/**
 * Issues a daemon token for a device (`deviceUuid` given, or typed) and shows it once: the page
 * keeps it only until "Done", and no later answer holds it (the write service stores its hash).
 */
export function IssueToken({ deviceUuid, onIssued }: { deviceUuid?: string; onIssued: () => void }) {
  const [issued, setIssued] = useState<string>();
  const [errors, setErrors] = useState<Record<string, string>>({});
  const { busy, run } = useAction();
  const issue = async (form: FormData) => {
    const hours = String(form.get('ttl') ?? '');
    const done = await run(
      () => api.tokens.issueDaemonToken({ deviceUuid: deviceUuid ?? String(form.get('device_uuid') ?? '').trim(), ttl: hours ? { seconds: BigInt(Math.round(Number(hours) * 3600)) } : undefined }),
      (res) => `Issued token ${res.daemonToken?.prefix ?? ''}: copy it now`,
    );
    setErrors(done.ok ? {} : fieldErrors(done.error));
    if (!done.ok) return;
    setIssued(done.value.token);
    onIssued();
  };
  return (
    <>
      {issued && <ShownOnce title="New daemon token" secret={issued} onClose={() => setIssued(undefined)} />}
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void issue(new FormData(e.currentTarget));
        }}
      >
        {!deviceUuid && <Input name="device_uuid" label="Device (uuid)" error={errors.device_uuid} required />}
        <Input name="ttl" label="Lifetime (hours; empty: 24)" type="number" min="0" step="any" error={errors.ttl} />
        <button type="submit" aria-busy={busy} disabled={busy}>
          Issue a token
        </button>
      </form>
    </>
  );
}

/** Imports a token the original system issued, so its daemon keeps working; it is sent once and stored as a hash. */
function ImportLegacyToken({ onImported }: { onImported: () => void }) {
  const [errors, setErrors] = useState<Record<string, string>>({});
  const { busy, run } = useAction();
  const submit = async (formElement: HTMLFormElement) => {
    const form = new FormData(formElement);
    const expires = String(form.get('expire_time') ?? '');
    const done = await run(
      () =>
        api.tokens.importLegacyDaemonToken({
          deviceUuid: String(form.get('device_uuid') ?? '').trim(),
          token: String(form.get('token') ?? ''),
          expireTime: expires ? timestampFromDate(new Date(expires)) : undefined,
        }),
      (t) => `Imported legacy token ${t.prefix}`,
    );
    setErrors(done.ok ? {} : fieldErrors(done.error));
    if (!done.ok) return;
    formElement.reset();
    onImported();
  };
  return (
    <form
      class="inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        void submit(e.currentTarget);
      }}
    >
      <Input name="device_uuid" label="Device (uuid)" error={errors.device_uuid} required />
      <Input name="token" label="Legacy token" type="password" autoComplete="off" error={errors.token} required />
      <Input name="expire_time" label="Expires (empty: never)" type="datetime-local" error={errors.expire_time} />
      <button type="submit" aria-busy={busy} disabled={busy}>
        Import
      </button>
    </form>
  );
}

/** The daemon tokens (`/tokens?device_uuid=&legacy=yes|no`): issue, import a legacy one, revoke; filtered and paged on the server. */
export function TokensPage() {
  const { query } = useLocation();
  const go = useQueryNavigation('/tokens');
  const may = useMay();
  const legacy = query.legacy === 'yes' ? true : query.legacy === 'no' ? false : undefined;
  const tokens = usePolled(() => api.tokens.listDaemonTokens({ deviceUuid: query.device_uuid || undefined, legacy, pageSize: PAGE_SIZE, pageToken: query.page_token ?? '' }), JSON.stringify(query));
  return (
    <>
      <h1>Daemon tokens</h1>
      {may('DaemonTokenService/IssueDaemonToken') && (
        <details>
          <summary role="button" class="secondary">
            Issue a daemon token
          </summary>
          <IssueToken onIssued={tokens.reload} />
        </details>
      )}
      {may('DaemonTokenService/ImportLegacyDaemonToken') && (
        <details>
          <summary role="button" class="secondary">
            Import a legacy token
          </summary>
          <ImportLegacyToken onImported={tokens.reload} />
        </details>
      )}
      <FilterForm fields={['device_uuid', 'legacy']} go={go}>
        <label>
          Device (uuid)
          <input name="device_uuid" value={query.device_uuid ?? ''} />
        </label>
        <label>
          Kind
          <select name="legacy" value={query.legacy ?? ''}>
            <option value="">All</option>
            <option value="no">Issued here</option>
            <option value="yes">Legacy</option>
          </select>
        </label>
      </FilterForm>
      <LoadState error={tokens.error} loading={tokens.loading} what="the tokens" />
      {tokens.data && tokens.data.daemonTokens.length === 0 && <p>No token matches: issue one above; a daemon cannot sync without one.</p>}
      {tokens.data && tokens.data.daemonTokens.length > 0 && <TokenTable tokens={tokens.data.daemonTokens} reload={tokens.reload} showDevice />}
      <Pager pageToken={query.page_token} nextPageToken={tokens.data?.nextPageToken} go={go} />
    </>
  );
}
