import { readFile } from 'node:fs/promises';
import * as rollouts from '@titanbot/contracts/titanbot/admin/v1/rollout_service';
import { duration, flag, int, oneOf, required, switchFlag, text, uuid, type Parser, type Values } from './args.js';
import type { AdminApi } from './client.js';
import { ETAG, list, type Command, type Resource } from './command.js';
import { alignRows, refreshUntil, renderJson, renderTable } from './output.js';

const ID = required(flag('uuid', uuid, 'the rollout id (or give it as the argument)'));
const CHANGES = required(
  flag('changes', text, 'a JSON file: an array of RolloutChange in proto3 JSON, e.g. [{"update": {"habit": {"uuid": "…", "comment": "x"}, "updateMask": "comment"}}]'),
);
const DESCRIPTION = flag('description', text, 'what the rollout is for');
const REQUEST_ID = flag('request-id', text, 'idempotency key, a UUID (AIP-155): a retry with the same id returns the first result');
const VALIDATE_ONLY = switchFlag('validate-only', 'check the change set and show the rollout it would create, creating nothing');

/** `PERCENT[:MIN_DURATION]`, e.g. `1`, `10:30m`, `100`. */
const step: Parser<rollouts.RolloutStep> = {
  metavar: 'PERCENT[:DURATION]',
  parse(raw) {
    const [percent, hold] = raw.split(':', 2);
    const value = Number(percent);
    if (percent === '' || !Number.isFinite(value)) throw new Error(`expected a percent such as 10 or 10:30m, got ${JSON.stringify(raw)}`);
    return { percent: value, deviceUuids: [], minDuration: hold === undefined ? undefined : duration.parse(hold) };
  },
};
const STEP = required(flag('step', step, 'a step: percent of the scope\'s devices, and how long it is held at least (repeatable, in order; the last must be 100)', { repeat: true }));
const CANARY = flag('canary', uuid, 'a device in the cohort from the first step on (repeatable)', { repeat: true });
const MAX_FAILURES = flag('max-install-failures', int, 'gate: install failures tolerated in a step\'s cohort (setting any gate flag turns gates on)');
const MIN_COHORT = flag('min-cohort-size', int, 'gate: check the offline share only once the cohort has this many reported devices');
const ON_FAILURE = flag('on-failure', oneOf({ pause: rollouts.GateAction.GATE_ACTION_PAUSE, abort: rollouts.GateAction.GATE_ACTION_ABORT }), 'what a failed gate does (default pause)');
const AUTO_ADVANCE = switchFlag('auto-advance', 'gate: move on by itself once a step has been held for its duration with every gate passing');
const STATE = flag(
  'state',
  oneOf({
    created: rollouts.RolloutState.ROLLOUT_STATE_CREATED,
    running: rollouts.RolloutState.ROLLOUT_STATE_RUNNING,
    paused: rollouts.RolloutState.ROLLOUT_STATE_PAUSED,
    completed: rollouts.RolloutState.ROLLOUT_STATE_COMPLETED,
    aborted: rollouts.RolloutState.ROLLOUT_STATE_ABORTED,
  }),
  'only rollouts in this state',
);
const EVERY = flag('every', duration, 'between refreshes (default 2s)');
const PAGE_SIZE = flag('page-size', int, 'scopes per page (default 10; each costs the write service two daemon database builds)');
const PAGE_TOKEN = flag('page-token', text, 'the next_page_token of the previous page');

/** The gates the flags ask for; undefined when no gate flag is given. */
function gatesOf(v: Values): rollouts.RolloutGates | undefined {
  if (![MAX_FAILURES, MIN_COHORT, ON_FAILURE, AUTO_ADVANCE].some((f) => v.has(f))) return undefined;
  return {
    maxInstallFailures: v.get(MAX_FAILURES) ?? 0,
    minCohortSize: v.get(MIN_COHORT) ?? 0,
    onFailure: v.get(ON_FAILURE) ?? rollouts.GateAction.GATE_ACTION_PAUSE,
    autoAdvance: v.has(AUTO_ADVANCE),
  };
}

/** A rollout's steps, one row each: percent, state of the step, and its figures. */
function stepTable(r: rollouts.Rollout): string {
  const seconds = (d: { seconds: number; nanos: number } | undefined): string => (d ? `${(d.seconds + d.nanos / 1e9).toFixed(1)}s` : '');
  const rows = r.steps.map((s, i) => {
    const st = r.stepStatuses[i];
    const f = st?.figures;
    return {
      step: i,
      percent: s.percent,
      canaries: s.deviceUuids.length,
      at: i === r.currentStep && !st?.endTime ? 'here' : st?.endTime ? 'done' : '',
      cohort: f?.cohortSize ?? '',
      holding: f?.holding ?? '',
      failures: f?.installFailures ?? '',
      offline: f ? `${f.offline}/${f.cohortSize} (rest ${f.restOffline}/${f.restSize})` : '',
      'converged p50': seconds(f?.convergedP50),
      'converged p99': seconds(f?.convergedP99),
    };
  });
  const header = Object.keys(rows[0]!);
  return alignRows([header, ...rows.map((row) => Object.values(row).map(String))]);
}

/** A rollout as a table: its scalar fields, then its steps with their figures. */
const rolloutTable = (r: rollouts.Rollout): string => `${renderTable(rollouts.Rollout, [r])}\n\n${r.steps.length ? stepTable(r) : 'not started'}`;

/** A command making one call that answers a Rollout, shown with its steps' figures as a table. */
function rolloutCall(verb: string, summary: string, flags: Command['flags'], call: (api: AdminApi, v: Values) => Promise<rollouts.Rollout>): Command {
  return {
    verb,
    summary,
    flags,
    positional: ID,
    async run(api, values, table) {
      const r = await call(api, values);
      return { out: table ? rolloutTable(r) : renderJson(rollouts.Rollout, r) };
    },
  };
}

const ENDED = [rollouts.RolloutState.ROLLOUT_STATE_COMPLETED, rollouts.RolloutState.ROLLOUT_STATE_ABORTED];

const watch: Command = {
  verb: 'watch',
  summary: 'a rollout with its steps\' figures, refreshed until it ends or Ctrl-C',
  flags: [ID, EVERY],
  positional: ID,
  async run(api, values, table) {
    const every = values.get(EVERY);
    await refreshUntil(every ? every.seconds * 1000 + every.nanos / 1e6 : 2000, async () => {
      const r = await api.call(rollouts.RolloutServiceService.getRollout, { uuid: values.get(ID) });
      return { text: table ? rolloutTable(r) : renderJson(rollouts.Rollout, r), done: ENDED.includes(r.state) };
    });
    return { out: '' };
  },
};

/** `titanctl rollouts create|preview|start|advance|pause|abort|list|get|watch` (docs/decisions.md "Staged rollouts"). */
export const ROLLOUTS: Resource = {
  name: 'rollouts',
  summary: 'habit changes reaching a growing cohort of devices first, gated on their health',
  commands: [
    {
      verb: 'create',
      summary: 'record a change set (checked as the habit commands would), holding its habits until the rollout ends',
      flags: [CHANGES, DESCRIPTION, REQUEST_ID, VALIDATE_ONLY],
      async run(api, values, table) {
        let changes: unknown;
        try {
          changes = JSON.parse(await readFile(values.get(CHANGES), 'utf8'));
        } catch (err) {
          throw new Error(`--changes ${values.get(CHANGES)}: ${(err as Error).message}`);
        }
        if (!Array.isArray(changes)) throw new Error(`--changes ${values.get(CHANGES)}: expected a JSON array of RolloutChange`);
        const request = rollouts.CreateRolloutRequest.fromPartial({
          changes: changes.map((c) => rollouts.RolloutChange.fromJSON(c)),
          description: values.get(DESCRIPTION) ?? '',
          requestId: values.get(REQUEST_ID) ?? '',
          validateOnly: values.has(VALIDATE_ONLY),
        });
        const r = await api.call(rollouts.RolloutServiceService.createRollout, request);
        return { out: table ? rolloutTable(r) : renderJson(rollouts.Rollout, r) };
      },
    },
    {
      verb: 'preview',
      summary: 'what a rollout would change, changing nothing: each habit before and after, and per scope the devices and the delta a daemon would download',
      flags: [ID, PAGE_SIZE, PAGE_TOKEN],
      positional: ID,
      async run(api, values, table) {
        const page = await api.call(
          rollouts.RolloutServiceService.previewRollout,
          rollouts.PreviewRolloutRequest.fromPartial({ uuid: values.get(ID), pageSize: values.get(PAGE_SIZE), pageToken: values.get(PAGE_TOKEN) }),
          60_000,
        );
        if (!table) return { out: renderJson(rollouts.PreviewRolloutResponse, page) };
        const changes = page.changes.map((c) => `${c.habitUuid}: ${!c.before ? 'created' : !c.after ? 'deleted' : 'updated'}`).join('\n');
        const note = page.nextPageToken ? `more scopes: --page-token ${page.nextPageToken}` : undefined;
        return { out: `${changes}\n\n${renderTable(rollouts.ScopePreview, page.scopes)}`, ...(note ? { note } : {}) };
      },
    },
    rolloutCall('start', 'start a created rollout at its first step', [ID, STEP, CANARY, MAX_FAILURES, MIN_COHORT, ON_FAILURE, AUTO_ADVANCE, ETAG], (api, v) => {
      const steps = v.all(STEP).map((s, i) => (i === 0 ? { ...s, deviceUuids: v.all(CANARY) } : s));
      return api.call(rollouts.RolloutServiceService.startRollout, rollouts.StartRolloutRequest.fromPartial({ uuid: v.get(ID), steps, gates: gatesOf(v), etag: v.get(ETAG) }));
    }),
    rolloutCall('advance', 'move to the next step; past the last one, commit the changes as ordinary habit rows', [ID, ETAG], (api, v) =>
      api.call(rollouts.RolloutServiceService.advanceRollout, { uuid: v.get(ID), etag: v.get(ETAG) ?? '' }),
    ),
    rolloutCall('pause', 'hold a running rollout at its step', [ID, ETAG], (api, v) => api.call(rollouts.RolloutServiceService.pauseRollout, { uuid: v.get(ID), etag: v.get(ETAG) ?? '' })),
    rolloutCall('abort', 'end a rollout changing nothing: every device back to the stable content', [ID, ETAG], (api, v) =>
      api.call(rollouts.RolloutServiceService.abortRollout, { uuid: v.get(ID), etag: v.get(ETAG) ?? '' }),
    ),
    rolloutCall('get', 'show a rollout and its steps\' figures', [ID], (api, v) => api.call(rollouts.RolloutServiceService.getRollout, { uuid: v.get(ID) })),
    list({
      verb: 'list',
      summary: 'list rollouts, newest first',
      flags: [STATE],
      method: rollouts.RolloutServiceService.listRollouts,
      response: rollouts.ListRolloutsResponse,
      field: 'rollouts',
      item: rollouts.Rollout,
      request: (v) => rollouts.ListRolloutsRequest.fromPartial({ state: v.get(STATE) }),
    }),
    watch,
  ],
};
