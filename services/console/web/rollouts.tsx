import type { Duration } from '@bufbuild/protobuf/wkt';
import type { Habit } from '@titanbot/contracts/es/titanbot/admin/v1/habit_service_pb';
import { RolloutState, type HabitChange, type Rollout, type ScopePreview } from '@titanbot/contracts/es/titanbot/admin/v1/rollout_service_pb';
import { useLocation, useRoute } from 'preact-iso';
import { useState } from 'preact/hooks';
import { api } from './api';
import { durationText, Time } from './format';
import { HabitCanvas } from './habits';
import { REFRESH_MS, usePolled } from './poll';
import { useMay } from './session';
import { ConfirmButton, LoadState, Scrolls, useAction } from './ui';

const STATE_NAMES: Record<RolloutState, string> = {
  [RolloutState.UNSPECIFIED]: 'Unknown',
  [RolloutState.CREATED]: 'Created',
  [RolloutState.RUNNING]: 'Running',
  [RolloutState.PAUSED]: 'Paused',
  [RolloutState.COMPLETED]: 'Completed',
  [RolloutState.ABORTED]: 'Aborted',
};

const scopeName = (logicalId: number | undefined): string => (logicalId === undefined ? 'global' : `account ${logicalId}`);
const seconds = (d: Duration | undefined): string => (d ? `${(Number(d.seconds) + d.nanos / 1e9).toFixed(1)} s` : '—');
const bytes = (n: bigint): string => (n < 10_000n ? `${n} B` : `${(Number(n) / 1024).toFixed(1)} KiB`);

/** `/rollouts`: every rollout, newest first, refreshed while open. */
export function RolloutsPage() {
  const list = usePolled(() => api.rollouts.listRollouts({ pageSize: 100 }), 'all', REFRESH_MS);
  return (
    <>
      <h1>Rollouts</h1>
      <p>
        A rollout brings habit changes to a growing cohort of devices first. Create and start one with <code>titanctl rollouts</code>; here you follow it, and advance, pause or abort it.
      </p>
      <LoadState error={list.error} loading={list.loading} what="the rollouts" />
      {list.data && (
        <Scrolls label="Rollouts">
          <table>
            <thead>
              <tr>
                <th>Rollout</th>
                <th>State</th>
                <th>Scope</th>
                <th>Step</th>
                <th>Changes</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {list.data.rollouts.map((r) => (
                <tr key={r.uuid}>
                  <td>
                    <a href={`/rollouts/${r.uuid}`}>{r.description || r.uuid}</a>
                  </td>
                  <td>{STATE_NAMES[r.state]}</td>
                  <td>{scopeName(r.accountLogicalId)}</td>
                  <td>{r.steps.length ? `${r.currentStep + 1} of ${r.steps.length} (${r.steps[r.currentStep]?.percent} %)` : '—'}</td>
                  <td>{r.changes.length}</td>
                  <td>
                    <Time value={r.createTime} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scrolls>
      )}
      {list.data?.rollouts.length === 0 && <p>No rollout yet.</p>}
    </>
  );
}

/**
 * `/rollouts/<uuid>`: the rollout's state and steps with their figures (refreshed while open), its
 * preview (each changed habit drawn before and after, and per scope the delta a daemon downloads),
 * and Advance, Pause and Abort for the roles that may call them.
 */
export function RolloutPage() {
  const { params } = useRoute();
  const uuid = params.uuid!;
  const rollout = usePolled(() => api.rollouts.getRollout({ uuid }), uuid, REFRESH_MS);
  const r = rollout.data;
  const open = r && [RolloutState.CREATED, RolloutState.RUNNING, RolloutState.PAUSED].includes(r.state);
  return (
    <>
      <h1>Rollout {r?.description ? `“${r.description}”` : ''}</h1>
      <LoadState error={rollout.error} loading={rollout.loading} what="the rollout" />
      {r && (
        <>
          <p data-testid="rollout-state">
            <strong>{STATE_NAMES[r.state]}</strong> · {scopeName(r.accountLogicalId)} · created <Time value={r.createTime} />
            {r.stateReason && <> · {r.stateReason}</>}
          </p>
          <Actions rollout={r} reload={rollout.reload} />
          <Steps rollout={r} />
          {open ? <Preview uuid={uuid} /> : <p>The rollout has ended: its changes are {r.state === RolloutState.COMPLETED ? 'ordinary habit rows' : 'gone'}.</p>}
        </>
      )}
    </>
  );
}

/** Advance, Pause, Abort: each shown when the rollout's state allows it and the operator's roles may call it. */
function Actions({ rollout: r, reload }: { rollout: Rollout; reload: () => void }) {
  const may = useMay();
  const { busy, run } = useAction();
  const { route } = useLocation();
  const moving = r.state === RolloutState.RUNNING || r.state === RolloutState.PAUSED;
  const last = r.currentStep === r.steps.length - 1;
  const act = (action: () => Promise<Rollout>, done: string) => run(action, () => done).then(reload);
  return (
    <div role="group" aria-label="Rollout actions" class="rollout-actions">
      {moving && may('RolloutService/AdvanceRollout') && (
        <button aria-busy={busy} disabled={busy} onClick={() => act(() => api.rollouts.advanceRollout({ uuid: r.uuid, etag: r.etag }), last ? 'Rollout completed' : 'Rollout advanced')}>
          {last ? 'Complete' : `Advance to ${r.steps[r.currentStep + 1]?.percent} %`}
        </button>
      )}
      {r.state === RolloutState.RUNNING && may('RolloutService/PauseRollout') && (
        <button class="secondary" aria-busy={busy} disabled={busy} onClick={() => act(() => api.rollouts.pauseRollout({ uuid: r.uuid, etag: r.etag }), 'Rollout paused')}>
          Pause
        </button>
      )}
      {(moving || r.state === RolloutState.CREATED) && may('RolloutService/AbortRollout') && (
        <ConfirmButton
          label="Abort"
          question="Abort this rollout? Every device gets the stable content back (cohort daemons download a delta), and no habit changes."
          onConfirm={() => act(() => api.rollouts.abortRollout({ uuid: r.uuid, etag: r.etag }), 'Rollout aborted').then(() => route(`/rollouts/${r.uuid}`, true))}
        />
      )}
    </div>
  );
}

/** The steps with each one's figures: kept for the steps left, live for the current one. */
function Steps({ rollout: r }: { rollout: Rollout }) {
  if (r.steps.length === 0) return <p>Not started.</p>;
  return (
    <section aria-labelledby="steps-heading">
      <h2 id="steps-heading">Steps</h2>
      <Scrolls label="Steps">
        <table>
          <thead>
            <tr>
              <th>Step</th>
              <th>Cohort</th>
              <th>Held at least</th>
              <th>Started</th>
              <th>Devices</th>
              <th>Holding</th>
              <th>Install failures</th>
              <th>Offline (rest)</th>
              <th>Converged p50 / p99</th>
            </tr>
          </thead>
          <tbody>
            {r.steps.map((s, i) => {
              const st = r.stepStatuses[i];
              const f = st?.figures;
              const here = i === r.currentStep && !st?.endTime && st?.startTime;
              return (
                <tr key={i} aria-current={here ? 'step' : undefined}>
                  <td>{i + 1}</td>
                  <td>
                    {s.percent} %{s.deviceUuids.length ? ` + ${s.deviceUuids.length} named` : ''}
                  </td>
                  <td>{durationText(s.minDuration)}</td>
                  <td>
                    <Time value={st?.startTime} />
                  </td>
                  <td>{f ? f.cohortSize : '—'}</td>
                  <td>{f ? f.holding : '—'}</td>
                  <td>{f ? f.installFailures : '—'}</td>
                  <td>{f ? `${f.offline} (${f.restOffline} of ${f.restSize})` : '—'}</td>
                  <td>{f ? `${seconds(f.convergedP50)} / ${seconds(f.convergedP99)}` : '—'}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </Scrolls>
    </section>
  );
}

/** PreviewRollout: each changed habit drawn before and after with the fields that change, and per scope what a daemon downloads (one page at a time). */
function Preview({ uuid }: { uuid: string }) {
  const [pageToken, setPageToken] = useState('');
  const preview = usePolled(() => api.rollouts.previewRollout({ uuid, pageToken }), `${uuid} ${pageToken}`);
  return (
    <section aria-labelledby="preview-heading">
      <h2 id="preview-heading">What it changes</h2>
      <LoadState error={preview.error} loading={preview.loading} what="the preview" />
      {preview.data && (
        <>
          <ul class="habit-changes">
            {preview.data.changes.map((c) => (
              <li key={c.habitUuid}>
                <ChangeView change={c} />
              </li>
            ))}
          </ul>
          <ScopeTable scopes={preview.data.scopes} />
          {preview.data.nextPageToken && (
            <button class="secondary" onClick={() => setPageToken(preview.data!.nextPageToken)}>
              More scopes
            </button>
          )}
        </>
      )}
    </section>
  );
}

/** The fields a habit change touches, each as it was and as it will be. */
const FIELDS = ['priority', 'action', 'comment', 'triggerShell', 'logTemplate', 'postTimeoutMs', 'sequence', 'context', 'isInterruption', 'isActive'] as const;

function ChangeView({ change: c }: { change: HabitChange }) {
  const what = !c.before ? 'created' : !c.after ? 'deleted' : 'updated';
  const changed = FIELDS.filter((f) => String(c.before?.[f] ?? '') !== String(c.after?.[f] ?? ''));
  const drawn = (h: Habit | undefined, label: string) => (h ? <HabitCanvas habit={h} width={240} label={label} /> : <p class="no-habit">{label}: none</p>);
  return (
    <article aria-label={`Habit ${c.habitUuid}, ${what}`}>
      <header>
        <a href={`/habits/${c.habitUuid}`}>{c.habitUuid}</a> {what}
      </header>
      <div class="before-after">
        <figure>
          {drawn(c.before, `before: habit ${c.habitUuid}`)}
          <figcaption>Before</figcaption>
        </figure>
        <figure>
          {drawn(c.after, `after: habit ${c.habitUuid}`)}
          <figcaption>After</figcaption>
        </figure>
      </div>
      {changed.length > 0 && (
        <table class="field-changes">
          <tbody>
            {changed.map((f) => (
              <tr key={f}>
                <th scope="row">{f}</th>
                <td>
                  <del>{String(c.before?.[f] ?? '—')}</del>
                </td>
                <td>
                  <ins>{String(c.after?.[f] ?? '—')}</ins>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </article>
  );
}

function ScopeTable({ scopes }: { scopes: ScopePreview[] }) {
  return (
    <Scrolls label="Scopes">
      <table>
        <thead>
          <tr>
            <th>Scope</th>
            <th>Devices</th>
            <th>File now</th>
            <th>File after</th>
            <th>A daemon downloads</th>
          </tr>
        </thead>
        <tbody>
          {scopes.map((s) => (
            <tr key={scopeName(s.logicalId)}>
              <td>{scopeName(s.logicalId)}</td>
              <td>{s.reportedDevices}</td>
              <td title={s.stableSha256}>{bytes(s.stableBytes)}</td>
              <td title={s.candidateSha256}>{bytes(s.candidateBytes)}</td>
              <td>{bytes(s.deltaBytes)} (delta)</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Scrolls>
  );
}
