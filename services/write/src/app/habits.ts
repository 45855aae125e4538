import { DomainError, checkEtag, notFound } from '../domain/errors.js';
import { Habit, type HabitFields, type Pixel, type ShapeInput } from '../domain/habit.js';
import { loadHabitLists, releaseHabitLists, storePixels, storeShapes } from '../db/habit-lists.js';
import { openRolloutChanging } from '../db/rollout-candidates.js';
import { chosenId, decodePageToken, isUuid, type Page, pageSize, requireUuid, toPage, type UseCaseContext } from './context.js';

/**
 * Refuses a write to habit `uuid` while an open rollout changes it (docs/decisions.md "Staged
 * rollouts": ordinary writes wait for the rollout). Errors: ROLLOUT_IN_PROGRESS naming the rollout.
 */
async function refuseIfInRollout(ctx: UseCaseContext, uuid: string): Promise<void> {
  const rollout = await openRolloutChanging(ctx.em, uuid);
  if (rollout) throw new DomainError('ROLLOUT_IN_PROGRESS', `habit ${uuid} is changed by rollout ${rollout.uuid} (${rollout.state}): complete or abort it first`);
}

/**
 * CreateHabit, with the uuid `habitId` when not empty (AIP-133): pixels and shapes are looked up,
 * else created. Errors: invalid, already_exists (habit_id), ROLLOUT_IN_PROGRESS (an open rollout creates that habit_id).
 */
export async function createHabit(ctx: UseCaseContext, fields: Partial<HabitFields>, pixels: Pixel[], shapes: ShapeInput[], habitId = ''): Promise<Habit> {
  const uuid = await chosenId(ctx, Habit, 'habit_id', habitId);
  if (habitId !== '') await refuseIfInRollout(ctx, uuid);
  const habit = Habit.create(uuid, fields, pixels, shapes, ctx.now);
  ctx.em.persist(habit);
  await ctx.em.flush();
  await storePixels(ctx.em, habit);
  await storeShapes(ctx.em, habit);
  return habit;
}

/** GetHabit with its pixels and shapes. Errors: invalid, not_found. */
export async function getHabit(ctx: UseCaseContext, uuid: string): Promise<Habit> {
  const habit = await ctx.em.findOne(Habit, { uuid: requireUuid('uuid', uuid) });
  if (!habit) throw notFound('habit', uuid);
  await loadHabitLists(ctx.em, [habit]);
  return habit;
}

/** ListHabits in uuid order, by account or global only. Errors: invalid. */
export async function listHabits(
  ctx: UseCaseContext,
  query: { pageSize: number; pageToken: string; accountLogicalId?: number; globalOnly: boolean },
): Promise<Page<Habit>> {
  const size = pageSize(query.pageSize);
  const after = decodePageToken(query.pageToken, isUuid);
  const scope =
    query.accountLogicalId !== undefined
      ? { accountLogicalId: query.accountLogicalId }
      : query.globalOnly
        ? { accountLogicalId: null }
        : {};
  const habits = await ctx.em.find(Habit, { ...(after ? { uuid: { $gt: after } } : {}), ...scope }, { orderBy: { uuid: 'asc' }, limit: size + 1 });
  const page = toPage(habits, size, (h) => h.uuid);
  await loadHabitLists(ctx.em, page.items);
  return page;
}

/**
 * UpdateHabit: scalar fields, and whole pixel or shape lists when given (pixels and shapes no
 * other habit uses are removed). `updated_at` moves forward when something changed; an update
 * that changes nothing writes nothing. Errors: invalid, not_found, conflict, ROLLOUT_IN_PROGRESS.
 */
export async function updateHabit(
  ctx: UseCaseContext,
  uuid: string,
  etag: string | undefined,
  patch: Partial<HabitFields>,
  lists: { pixels?: Pixel[]; shapes?: ShapeInput[] },
): Promise<Habit> {
  const habit = await getHabit(ctx, uuid);
  await refuseIfInRollout(ctx, habit.uuid);
  checkEtag('habit', habit.version, etag);
  // An update that changes nothing writes nothing: no updated_at, no etag, no feed event.
  if (!habit.update(patch, lists, ctx.now)) return habit;
  await ctx.em.flush();
  if (lists.pixels) await storePixels(ctx.em, habit);
  if (lists.shapes) await storeShapes(ctx.em, habit);
  return habit;
}

/** DeleteHabit with the pixels and shapes only it used. Errors: invalid, not_found, ROLLOUT_IN_PROGRESS. */
export async function deleteHabit(ctx: UseCaseContext, uuid: string): Promise<void> {
  const habit = await getHabit(ctx, uuid);
  await refuseIfInRollout(ctx, habit.uuid);
  await releaseHabitLists(ctx.em, habit.uuid);
  ctx.em.remove(habit);
  await ctx.em.flush();
}
