import { GLOBAL_SCOPE } from '@titanbot/service-kit/daemon-database';
import { checkEtag, DomainError, invalid, notFound, underField } from '../domain/errors.js';
import type { Habit, HabitFields, Pixel, ShapeInput } from '../domain/habit.js';
import { failedGate, MAX_CHANGES, OPEN_ROLLOUT_STATES, Rollout, type RolloutGates, type RolloutState, type RolloutStep, type StepFigures } from '../domain/rollout.js';
import { stepFigures } from '../db/rollout-figures.js';
import { candidateHabits, reportedScopes, scopeFiles, type ScopeFiles } from '../db/rollout-preview.js';
import { captureCandidates, commitCandidates, dropCandidates, storeCandidates } from '../db/rollout-candidates.js';
import { decodePageToken, encodePageToken, isUuid, newId, type Page, pageSize, requireUuid, toPage, type UseCaseContext } from './context.js';
import * as habits from './habits.js';

/** One change of a change set, as the habit use cases take it. */
export type RolloutChangeInput =
  | { kind: 'create'; habitId: string; fields: Partial<HabitFields>; pixels: Pixel[]; shapes: ShapeInput[] }
  | { kind: 'update'; uuid: string; etag: string | undefined; fields: Partial<HabitFields>; lists: { pixels?: Pixel[]; shapes?: ShapeInput[] } }
  | { kind: 'delete'; uuid: string };

/** The field path of change `i` of kind `kind` in CreateRolloutRequest. */
const changePath = (i: number, kind: string): string => `changes[${i}].${kind}`;

/**
 * CreateRollout: checks each change as its habit RPC would against the habits as they are now, by
 * running it inside a savepoint (so the same code decides, including etags, existing ids and
 * pixel lookups), reads the habits as they came out, rolls the savepoint back and keeps those rows
 * as the rollout's candidate (db/rollout-candidates.ts); `asGiven` is the change set as the client
 * sent it, shown back by GetRollout. Errors: invalid (changes, a change's fields prefixed with
 * `changes[i].<kind>.`, two scopes, a habit twice, account_logical_id in an update), not_found,
 * ETAG_MISMATCH, ALREADY_EXISTS, ROLLOUT_IN_PROGRESS (another open rollout of an overlapping scope).
 */
export async function createRollout(ctx: UseCaseContext, changes: RolloutChangeInput[], asGiven: unknown[], description: string): Promise<Rollout> {
  if (changes.length === 0 || changes.length > MAX_CHANGES) throw invalid('changes', `must be 1..${MAX_CHANGES}`);
  const uuid = newId();
  const habitUuids: string[] = [];
  const deleted: string[] = [];
  let scope: number | null | undefined;
  await ctx.em.execute('savepoint rollout_candidate');
  let candidates;
  try {
    for (const [i, change] of changes.entries()) {
      const path = changePath(i, change.kind);
      const habit = await prefixed(path, () => applyChange(ctx, change));
      if (habitUuids.includes(habit.uuid)) throw invalid(path, `changes habit ${habit.uuid} a second time`);
      habitUuids.push(habit.uuid);
      if (change.kind === 'delete') deleted.push(habit.uuid);
      if (scope !== undefined && scope !== habit.accountLogicalId) throw invalid(path, 'is in another scope than changes[0] (a rollout changes the habits of one scope)');
      scope = habit.accountLogicalId;
    }
    candidates = await captureCandidates(ctx.em, habitUuids, deleted);
  } finally {
    await ctx.em.execute('rollback to savepoint rollout_candidate');
    ctx.em.clear();
  }
  await refuseOverlappingRollout(ctx, scope ?? null);
  const rollout = Rollout.create(uuid, description, scope ?? null, asGiven, habitUuids, ctx.now);
  ctx.em.persist(rollout);
  await ctx.em.flush();
  await storeCandidates(ctx.em, uuid, candidates);
  return rollout;
}

/** Runs one change through its habit use case; returns the habit's uuid and scope. */
async function applyChange(ctx: UseCaseContext, change: RolloutChangeInput): Promise<{ uuid: string; accountLogicalId: number | null }> {
  switch (change.kind) {
    case 'create':
      return habits.createHabit(ctx, change.fields, change.pixels, change.shapes, change.habitId);
    case 'update':
      if ('accountLogicalId' in change.fields) throw invalid('update_mask', 'account_logical_id cannot change in a rollout (a rollout stays in one scope)');
      return habits.updateHabit(ctx, change.uuid, change.etag, change.fields, change.lists);
    case 'delete': {
      const habit = await habits.getHabit(ctx, change.uuid);
      await habits.deleteHabit(ctx, change.uuid);
      return habit;
    }
  }
}

/** Re-raises a DomainError of `run` with its fields (and message) under `path`. */
async function prefixed<T>(path: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw err instanceof DomainError ? underField(err, path) : err;
  }
}

/** ROLLOUT_IN_PROGRESS when an open rollout's scope overlaps `scope` (a global rollout's overlaps every scope). */
async function refuseOverlappingRollout(ctx: UseCaseContext, scope: number | null): Promise<void> {
  const open = await ctx.em.find(Rollout, { state: { $in: [...OPEN_ROLLOUT_STATES] } }, { orderBy: { uuid: 'asc' } });
  const overlapping = open.find((r) => scope === null || r.accountLogicalId === null || r.accountLogicalId === scope);
  if (overlapping) {
    const its = overlapping.accountLogicalId === null ? 'the global habits' : `account ${overlapping.accountLogicalId}`;
    throw new DomainError('ROLLOUT_IN_PROGRESS', `rollout ${overlapping.uuid} (${overlapping.state}, ${its}) has not ended: at most one open rollout per scope`);
  }
}

/** GetRollout. Errors: invalid (uuid), not_found. */
export async function getRollout(ctx: UseCaseContext, uuid: string): Promise<Rollout> {
  const rollout = await ctx.em.findOne(Rollout, { uuid: requireUuid('uuid', uuid) });
  if (!rollout) throw notFound('rollout', uuid);
  return rollout;
}

/** ListRollouts newest first (uuid v7 descending), optionally of one state. Errors: invalid (page_size, page_token). */
export async function listRollouts(ctx: UseCaseContext, query: { pageSize: number; pageToken: string; state?: RolloutState }): Promise<Page<Rollout>> {
  const size = pageSize(query.pageSize);
  const before = decodePageToken(query.pageToken, isUuid);
  const rows = await ctx.em.find(
    Rollout,
    { ...(before ? { uuid: { $lt: before } } : {}), ...(query.state ? { state: query.state } : {}) },
    { orderBy: { uuid: 'desc' }, limit: size + 1 },
  );
  return toPage(rows, size, (r) => r.uuid);
}

/** Loads rollout `uuid` for a state change, checking the caller's etag. */
async function forChange(ctx: UseCaseContext, uuid: string, etag: string): Promise<Rollout> {
  const rollout = await getRollout(ctx, uuid);
  checkEtag('rollout', rollout.version, etag);
  return rollout;
}

/** Whether `rollout` is at a step (running or paused): it has a current step with figures. */
const atStep = (rollout: Rollout): boolean => rollout.state === 'running' || rollout.state === 'paused';

/** The current step's figures at the call's time (rollout-figures.ts). */
const figuresNow = (ctx: UseCaseContext, rollout: Rollout): Promise<StepFigures> => stepFigures(ctx.em, rollout, ctx.now, ctx.settings.offlineAfterMs);

/** A rollout with its current step's live figures (a running or paused one), for GetRollout and ListRollouts. */
export interface RolloutView {
  rollout: Rollout;
  liveFigures?: StepFigures;
}

/** The view of `rollout`: live figures while it is running or paused. */
export async function viewOf(ctx: UseCaseContext, rollout: Rollout): Promise<RolloutView> {
  return atStep(rollout) ? { rollout, liveFigures: await figuresNow(ctx, rollout) } : { rollout };
}

/** StartRollout. Errors: invalid (steps, gates), not_found, ETAG_MISMATCH, ROLLOUT_STATE_MISMATCH. */
export async function startRollout(ctx: UseCaseContext, uuid: string, steps: RolloutStep[], gates: RolloutGates | null, etag: string): Promise<Rollout> {
  const rollout = await forChange(ctx, uuid, etag);
  rollout.start(steps, gates, ctx.now);
  await ctx.em.flush();
  return rollout;
}

/**
 * AdvanceRollout: the next step, or past the last one the changes committed as ordinary habit
 * rows in this transaction; the step left keeps its figures. Errors: not_found, ETAG_MISMATCH,
 * ROLLOUT_STATE_MISMATCH, ROLLOUT_STEP_NOT_DUE.
 */
export async function advanceRollout(ctx: UseCaseContext, uuid: string, etag: string): Promise<Rollout> {
  return advance(ctx, await forChange(ctx, uuid, etag));
}

async function advance(ctx: UseCaseContext, rollout: Rollout): Promise<Rollout> {
  const figures = atStep(rollout) ? await figuresNow(ctx, rollout) : undefined;
  if (rollout.advance(ctx.now, figures) === 'completed') await commitCandidates(ctx.em, rollout.uuid);
  await ctx.em.flush();
  return rollout;
}

/** PauseRollout. Errors: not_found, ETAG_MISMATCH, ROLLOUT_STATE_MISMATCH. */
export async function pauseRollout(ctx: UseCaseContext, uuid: string, etag: string): Promise<Rollout> {
  const rollout = await forChange(ctx, uuid, etag);
  rollout.pause(ctx.now);
  await ctx.em.flush();
  return rollout;
}

/** AbortRollout: no habit changes; the candidate rows go. Errors: not_found, ETAG_MISMATCH, ROLLOUT_STATE_MISMATCH. */
export async function abortRollout(ctx: UseCaseContext, uuid: string, etag: string): Promise<Rollout> {
  return abort(ctx, await forChange(ctx, uuid, etag), '');
}

async function abort(ctx: UseCaseContext, rollout: Rollout, reason: string): Promise<Rollout> {
  const figures = atStep(rollout) ? await figuresNow(ctx, rollout) : undefined;
  rollout.abort(ctx.now, figures, reason);
  await dropCandidates(ctx.em, rollout.uuid);
  await ctx.em.flush();
  return rollout;
}

/** What a gate check did to one rollout. */
export interface GateOutcome {
  uuid: string;
  action: 'paused' | 'aborted' | 'advanced' | 'completed';
  reason: string;
}

/**
 * One round of gate checks (the write service runs it every ROLLOUT_GATE_INTERVAL, `intervalMs`,
 * in a write transaction): every running rollout with gates is paused or aborted (as its gates
 * say) when a gate fails, and with auto_advance moved on once its step has been held for its min
 * duration and at least one interval, so that two write replicas checking at once cannot pass
 * two steps. Returns what it did.
 */
export async function checkGates(ctx: UseCaseContext, intervalMs: number): Promise<GateOutcome[]> {
  const running = await ctx.em.find(Rollout, { state: 'running' }, { orderBy: { uuid: 'asc' } });
  const outcomes: GateOutcome[] = [];
  for (const rollout of running) {
    const gates = rollout.gates;
    if (!gates) continue;
    const figures = await figuresNow(ctx, rollout);
    const failed = failedGate(gates, figures);
    if (failed) {
      if (gates.onFailure === 'abort') await abort(ctx, rollout, failed);
      else {
        rollout.pause(ctx.now, failed);
        await ctx.em.flush();
      }
      outcomes.push({ uuid: rollout.uuid, action: gates.onFailure === 'abort' ? 'aborted' : 'paused', reason: failed });
      continue;
    }
    const heldSince = Date.parse(rollout.stepTimes[rollout.currentStep]!.startTime);
    if (gates.autoAdvance && ctx.now.getTime() >= Math.max(rollout.stepDueMs(), heldSince + intervalMs)) {
      await advance(ctx, rollout);
      outcomes.push({ uuid: rollout.uuid, action: rollout.state === 'completed' ? 'completed' : 'advanced', reason: '' });
    }
  }
  return outcomes;
}

/** Rollouts per state, for the `titanbot_rollouts` gauge. */
export async function countByState(ctx: UseCaseContext): Promise<Record<RolloutState, number>> {
  const rows: { state: RolloutState; n: string }[] = await ctx.em.execute('select state, count(*) as n from rollouts group by state');
  const counts = { created: 0, running: 0, paused: 0, completed: 0, aborted: 0 };
  for (const r of rows) counts[r.state] = Number(r.n);
  return counts;
}

/** One habit a rollout changes: as it is now (undefined for a create) and as the rollout leaves it (undefined for a delete). */
export interface HabitChange {
  habitUuid: string;
  before: Habit | undefined;
  after: Habit | undefined;
}

/** A page of PreviewRollout. */
export interface RolloutPreview {
  changes: HabitChange[];
  scopes: (ScopeFiles & { scopeKey: number })[];
  nextPageToken: string;
}

/** Scopes per PreviewRollout page: each costs two daemon database builds. */
const PREVIEW_PAGE_DEFAULT = 10;
const PREVIEW_PAGE_MAX = 100;

/**
 * PreviewRollout: the habits before and after, and per scope (paginated by scope key) what its
 * daemon database becomes (db/rollout-preview.ts). Changes nothing. Errors: invalid (uuid,
 * page_size, page_token), not_found, ROLLOUT_STATE_MISMATCH (ended).
 */
export async function previewRollout(ctx: UseCaseContext, uuid: string, query: { pageSize: number; pageToken: string }): Promise<RolloutPreview> {
  if (query.pageSize < 0 || query.pageSize > PREVIEW_PAGE_MAX) throw invalid('page_size', `must be 0..${PREVIEW_PAGE_MAX}`);
  const size = query.pageSize || PREVIEW_PAGE_DEFAULT;
  const after = decodePageToken(query.pageToken, (k) => /^\d{1,15}$/.test(k));
  const rollout = await getRollout(ctx, uuid);
  if (!OPEN_ROLLOUT_STATES.includes(rollout.state)) throw new DomainError('ROLLOUT_STATE_MISMATCH', `rollout ${uuid} is ${rollout.state}: its candidate is gone`);
  const candidates = await candidateHabits(ctx.em, rollout.uuid);
  const changes: HabitChange[] = [];
  for (const habitUuid of rollout.habitUuids) {
    const before = await habits.getHabit(ctx, habitUuid).catch((err: unknown) => {
      if (err instanceof DomainError && err.reason === 'NOT_FOUND') return undefined;
      throw err;
    });
    changes.push({ habitUuid, before, after: candidates.get(habitUuid) });
  }
  // The rollout's scope; a global rollout's are every account scope a device reports, then the global scope (the largest key).
  const all = rollout.accountLogicalId !== null ? [rollout.accountLogicalId] : [...(await reportedScopes(ctx.em)).filter((k) => k !== GLOBAL_SCOPE), GLOBAL_SCOPE];
  const following = all.filter((k) => after === undefined || k > Number(after));
  const page = following.slice(0, size);
  const scopes = [];
  for (const scopeKey of page) scopes.push({ scopeKey, ...(await scopeFiles(ctx.em, rollout.uuid, scopeKey)) });
  return { changes, scopes, nextPageToken: following.length > size ? encodePageToken(String(page[page.length - 1])) : '' };
}
