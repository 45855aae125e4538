import {
  GateAction,
  RolloutChange,
  RolloutServiceService,
  RolloutState as ProtoState,
  type Rollout as RolloutMessage,
  type RolloutGates as GatesMessage,
  type RolloutServiceServer,
  type RolloutStep as StepMessage,
  type RolloutStepFigures as FiguresMessage,
} from '@titanbot/contracts/titanbot/admin/v1/rollout_service';
import * as rollouts from '../../app/rollouts.js';
import { requireUuid } from '../../app/context.js';
import { DomainError, invalid, underField } from '../../domain/errors.js';
import type { RolloutGates, RolloutStep, StepFigures } from '../../domain/rollout.js';
import { unary, type Runtime } from '../handler.js';
import { durationToMs, enumMap, orUndefined } from '../translate.js';
import { createHabitInput, habitToProto, updateHabitInput } from './habit-service.js';
import { logicalIdOf } from '../../app/fleet.js';

const STATE_PAIRS = [
  [ProtoState.ROLLOUT_STATE_CREATED, 'created'],
  [ProtoState.ROLLOUT_STATE_RUNNING, 'running'],
  [ProtoState.ROLLOUT_STATE_PAUSED, 'paused'],
  [ProtoState.ROLLOUT_STATE_COMPLETED, 'completed'],
  [ProtoState.ROLLOUT_STATE_ABORTED, 'aborted'],
] as const;
const state = enumMap(STATE_PAIRS, 'state');

/** One RolloutChange as the rollout use case takes it. Errors: INVALID_ARGUMENT naming `changes[i]...`. */
function changeInput(change: RolloutChange, i: number): rollouts.RolloutChangeInput {
  const c = change.change;
  const at = `changes[${i}]`;
  try {
    switch (c?.$case) {
      case 'create':
        if (c.value.requestId !== '' || c.value.validateOnly) throw invalid('request_id', 'request_id and validate_only belong to CreateRolloutRequest, not to a change');
        return { kind: 'create', ...createHabitInput(c.value) };
      case 'update':
        return { kind: 'update', ...updateHabitInput(c.value) };
      case 'delete':
        return { kind: 'delete', uuid: c.value.uuid };
      case undefined:
        throw invalid('change', 'set one of create, update, delete');
    }
  } catch (err) {
    throw err instanceof DomainError ? underField(err, c?.$case ? `${at}.${c.$case}` : at) : err;
  }
}

/** A RolloutStep message as the domain takes it. Errors: INVALID_ARGUMENT (device_uuids, min_duration). */
function stepInput(step: StepMessage, i: number): RolloutStep {
  return {
    percent: step.percent,
    deviceUuids: step.deviceUuids.map((d, j) => requireUuid(`steps[${i}].device_uuids[${j}]`, d)),
    minDurationMs: durationToMs(step.minDuration, `steps[${i}].min_duration`) ?? 0,
  };
}

const msToDuration = (ms: number): { seconds: number; nanos: number } => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

const gateAction = enumMap(
  [
    [GateAction.GATE_ACTION_PAUSE, 'pause'],
    [GateAction.GATE_ACTION_ABORT, 'abort'],
  ] as const,
  'gates.on_failure',
);

/** RolloutGates as the domain takes them (unset: none); an unset on_failure pauses. */
function gatesInput(g: GatesMessage | undefined): RolloutGates | null {
  if (!g) return null;
  return { maxInstallFailures: g.maxInstallFailures, minCohortSize: g.minCohortSize, onFailure: gateAction.domain(g.onFailure, 'pause'), autoAdvance: g.autoAdvance };
}

function figuresToProto(f: StepFigures): FiguresMessage {
  const { convergedP50Ms, convergedP99Ms, ...counts } = f;
  return { ...counts, convergedP50: msToDuration(convergedP50Ms), convergedP99: msToDuration(convergedP99Ms) };
}

/** A rollout with its steps' figures: kept ones for the steps left, `liveFigures` for the current one. */
export function rolloutToProto({ rollout: r, liveFigures }: rollouts.RolloutView): RolloutMessage {
  return {
    uuid: r.uuid,
    description: r.description,
    state: state.proto(r.state),
    accountLogicalId: orUndefined(r.accountLogicalId),
    changes: r.changes.map((c) => RolloutChange.fromJSON(c)),
    steps: r.steps.map((s) => ({ percent: s.percent, deviceUuids: s.deviceUuids, minDuration: msToDuration(s.minDurationMs) })),
    stepStatuses: r.steps.map((_, i) => {
      const t = r.stepTimes[i];
      const figures = t?.figures ?? (i === r.currentStep ? liveFigures : undefined);
      return { startTime: t ? new Date(t.startTime) : undefined, endTime: t?.endTime ? new Date(t.endTime) : undefined, figures: figures ? figuresToProto(figures) : undefined };
    }),
    currentStep: r.currentStep,
    createTime: r.createTime,
    updateTime: r.updateTime,
    etag: String(r.version),
    habitUuids: r.habitUuids,
    gates: r.gates ? { ...r.gates, onFailure: gateAction.proto(r.gates.onFailure) } : undefined,
    stateReason: r.stateReason,
  };
}

/** titanbot.admin.v1.RolloutService handlers (docs/decisions.md "Staged rollouts"). */
export function rolloutService(rt: Runtime): RolloutServiceServer {
  const m = RolloutServiceService;
  return {
    createRollout: unary(rt, m.createRollout, { write: true, requestId: (r) => r.requestId, validateOnly: (r) => r.validateOnly }, async (ctx, req) => {
      const changes = req.changes.map(changeInput);
      return rolloutToProto({ rollout: await rollouts.createRollout(ctx, changes, req.changes.map((c) => RolloutChange.toJSON(c)), req.description) });
    }),
    getRollout: unary(rt, m.getRollout, { write: false }, async (ctx, req) => rolloutToProto(await rollouts.viewOf(ctx, await rollouts.getRollout(ctx, req.uuid)))),
    previewRollout: unary(rt, m.previewRollout, { write: false }, async (ctx, req) => {
      const preview = await rollouts.previewRollout(ctx, req.uuid, { pageSize: req.pageSize, pageToken: req.pageToken });
      return {
        changes: preview.changes.map((c) => ({ habitUuid: c.habitUuid, before: c.before && habitToProto(c.before), after: c.after && habitToProto(c.after) })),
        scopes: preview.scopes.map(({ scopeKey, ...files }) => ({ logicalId: logicalIdOf(scopeKey), ...files })),
        nextPageToken: preview.nextPageToken,
      };
    }),
    listRollouts: unary(rt, m.listRollouts, { write: false }, async (ctx, req) => {
      const page = await rollouts.listRollouts(ctx, {
        pageSize: req.pageSize,
        pageToken: req.pageToken,
        ...(req.state === ProtoState.ROLLOUT_STATE_UNSPECIFIED ? {} : { state: state.domain(req.state) }),
      });
      const views = [];
      for (const r of page.items) views.push(rolloutToProto(await rollouts.viewOf(ctx, r)));
      return { rollouts: views, nextPageToken: page.nextPageToken };
    }),
    startRollout: unary(rt, m.startRollout, { write: true }, async (ctx, req) =>
      rolloutToProto(await rollouts.viewOf(ctx, await rollouts.startRollout(ctx, req.uuid, req.steps.map(stepInput), gatesInput(req.gates), req.etag))),
    ),
    advanceRollout: unary(rt, m.advanceRollout, { write: true }, async (ctx, req) => rolloutToProto(await rollouts.viewOf(ctx, await rollouts.advanceRollout(ctx, req.uuid, req.etag)))),
    pauseRollout: unary(rt, m.pauseRollout, { write: true }, async (ctx, req) => rolloutToProto(await rollouts.viewOf(ctx, await rollouts.pauseRollout(ctx, req.uuid, req.etag)))),
    abortRollout: unary(rt, m.abortRollout, { write: true }, async (ctx, req) => rolloutToProto(await rollouts.viewOf(ctx, await rollouts.abortRollout(ctx, req.uuid, req.etag)))),
  };
}
