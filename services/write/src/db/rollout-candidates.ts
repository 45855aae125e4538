import type { Em } from './orm.js';
import { pgArray } from './sql.js';
import { OPEN_ROLLOUT_STATES, type RolloutState } from '../domain/rollout.js';
import type { Pixel, Shape } from '../domain/habit.js';
import { listValues, pixelIdsOf, removeOrphanPixels, removeOrphanShapes, shapeIdsOf, storeHabitLinks } from './habit-lists.js';

// A rollout's candidate rows (migration 0010): each habit it changes as that habit will be, with
// its pixel and shape links, kept while the rollout is open and fed to the replicas, which build a
// cohort's candidate content from them. Habit rows are carried as to_jsonb documents and written
// back with jsonb_populate_record(set), so every value (timestamps to the microsecond) round-trips
// exactly: the candidate a cohort holds and the habit rows a completed rollout commits are the same rows.

/** A habit row's columns besides its uuid, as `habits` and `rollout_habits` both have them. */
const HABIT_VALUES = 'account_logical_id, priority, trigger_shell, log_template, post_timeout_ms, comment, sequence, context, action, is_interruption, is_active, updated_at, version';

/** What CreateRollout captures of the changed habits (see captureCandidates). */
export interface Candidates {
  /** The habits rows of created and updated habits (to_jsonb), with the deleted ones' uuids. */
  habits: unknown[];
  deleted: string[];
  /** Each habit's pixels and shapes as values, in order: uuids made inside the savepoint do not outlive it. */
  pixels: Map<string, Pixel[]>;
  shapes: Map<string, Shape[]>;
}

/**
 * Reads the habits `habitUuids` as the caller's transaction has just written them (inside a
 * savepoint that is then rolled back): their rows, and their pixel and shape lists as values.
 * `deleted`: the uuids the change set deletes (they have no row).
 */
export async function captureCandidates(em: Em, habitUuids: string[], deleted: string[]): Promise<Candidates> {
  const habits: { doc: unknown }[] = await em.execute('select to_jsonb(h) as doc from habits h where h.uuid = any (?::uuid[])', [pgArray(habitUuids)]);
  return { habits: habits.map((r) => r.doc), deleted, ...(await listValues(em, { habitUuids })) };
}

/**
 * Stores `candidates` as rollout `rolloutUuid`'s candidate rows. Pixels and shapes are looked up
 * (else created) again by value: the savepoint's may have been rolled back, or a value the
 * savepoint deleted and created anew exists again under its old uuid.
 */
export async function storeCandidates(em: Em, rolloutUuid: string, candidates: Candidates): Promise<void> {
  if (candidates.habits.length > 0) {
    await em.execute(
      `insert into rollout_habits (rollout_uuid, habit_uuid, deleted, ${HABIT_VALUES})
         select ?, uuid, false, ${HABIT_VALUES} from jsonb_populate_recordset(null::habits, ?::jsonb)`,
      [rolloutUuid, JSON.stringify(candidates.habits)],
    );
  }
  if (candidates.deleted.length > 0) {
    // A deleted habit's candidate row carries its last values only to satisfy the columns; replicas read `deleted`.
    await em.execute(
      `insert into rollout_habits (rollout_uuid, habit_uuid, deleted, ${HABIT_VALUES})
         select ?, uuid, true, ${HABIT_VALUES} from habits where uuid = any (?::uuid[])`,
      [rolloutUuid, pgArray(candidates.deleted)],
    );
  }
  const link = async (table: string, column: string, habitUuid: string, ids: string[]): Promise<void> => {
    if (ids.length === 0) return;
    await em.execute(
      `insert into ${table} (rollout_uuid, habit_uuid, ${column}, position) select ?, ?, id, n - 1 from unnest(?::uuid[]) with ordinality u(id, n)`,
      [rolloutUuid, habitUuid, pgArray(ids)],
    );
  };
  for (const [habitUuid, list] of candidates.pixels) await link('rollout_habit_pixels', 'pixel_uuid', habitUuid, await pixelIdsOf(em, list));
  for (const [habitUuid, list] of candidates.shapes) await link('rollout_habit_shapes', 'shape_uuid', habitUuid, await shapeIdsOf(em, list));
}

/**
 * Commits rollout `rolloutUuid`'s candidate rows as the habits themselves (a completed rollout):
 * created and updated habits get exactly the candidate's row and links, then deleted ones are
 * deleted; the candidate rows go last, so while habits are rewritten every pixel and shape a
 * candidate uses stays referenced (an orphan sweep in between cannot take it).
 */
export async function commitCandidates(em: Em, rolloutUuid: string): Promise<void> {
  const habits: { doc: { habit_uuid: string; deleted: boolean } }[] = await em.execute(
    'select to_jsonb(r) as doc from rollout_habits r where rollout_uuid = ? order by deleted, habit_uuid',
    [rolloutUuid],
  );
  const links = async (table: string, column: string): Promise<Map<string, string[]>> => {
    const rows: { habit_uuid: string; id: string }[] = await em.execute(`select habit_uuid, ${column} as id from ${table} where rollout_uuid = ? order by habit_uuid, position`, [rolloutUuid]);
    const byHabit = new Map<string, string[]>();
    for (const r of rows) byHabit.set(r.habit_uuid, [...(byHabit.get(r.habit_uuid) ?? []), r.id]);
    return byHabit;
  };
  const pixels = await links('rollout_habit_pixels', 'pixel_uuid');
  const shapes = await links('rollout_habit_shapes', 'shape_uuid');
  const columns = `uuid, ${HABIT_VALUES}`;
  for (const { doc } of habits) {
    if (doc.deleted) {
      await storeHabitLinks(em, doc.habit_uuid, [], []);
      await em.execute('delete from habits where uuid = ?', [doc.habit_uuid]);
      continue;
    }
    await em.execute(
      `insert into habits (${columns})
         select ${columns} from jsonb_populate_record(null::habits, ?::jsonb || jsonb_build_object('uuid', ?::uuid))
       on conflict (uuid) do update set (${columns}) = (excluded.${columns.split(', ').join(', excluded.')})`,
      [JSON.stringify(doc), doc.habit_uuid],
    );
    await storeHabitLinks(em, doc.habit_uuid, pixels.get(doc.habit_uuid) ?? [], shapes.get(doc.habit_uuid) ?? []);
  }
  await dropCandidates(em, rolloutUuid);
}

/** Drops rollout `rolloutUuid`'s candidate rows (an aborted or completed rollout), and the pixels and shapes only they used. */
export async function dropCandidates(em: Em, rolloutUuid: string): Promise<void> {
  const pixels: { id: string }[] = await em.execute('delete from rollout_habit_pixels where rollout_uuid = ? returning pixel_uuid as id', [rolloutUuid]);
  const shapes: { id: string }[] = await em.execute('delete from rollout_habit_shapes where rollout_uuid = ? returning shape_uuid as id', [rolloutUuid]);
  await em.execute('delete from rollout_habits where rollout_uuid = ?', [rolloutUuid]);
  await removeOrphanPixels(em, pixels.map((r) => r.id));
  await removeOrphanShapes(em, shapes.map((r) => r.id));
}

/** The open rollout whose change set changes habit `habitUuid`, if any (at most one: scopes of open rollouts do not overlap). */
export async function openRolloutChanging(em: Em, habitUuid: string): Promise<{ uuid: string; state: RolloutState } | undefined> {
  const rows: { uuid: string; state: RolloutState }[] = await em.execute(
    `select r.uuid, r.state from rollouts r join rollout_habits rh on rh.rollout_uuid = r.uuid
      where rh.habit_uuid = ? and r.state = any (?::text[]) limit 1`,
    [habitUuid, pgArray([...OPEN_ROLLOUT_STATES])],
  );
  return rows[0];
}
