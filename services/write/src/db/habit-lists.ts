import { v7 as uuidv7 } from 'uuid';
import type { Habit, Pixel, Shape, ShapeType } from '../domain/habit.js';
import type { Em } from './orm.js';
import { pgArray } from './sql.js';

// Pixels (dot + color) and shapes are stored once and shared between habits (docs/domain.md): each
// write looks a value up, else creates it (`on conflict do nothing` then select), and removes the
// ones no habit (and no open rollout's candidate, db/rollout-candidates.ts) uses any more, all
// inside the caller's transaction. Rows that already exist are
// not touched, so they put nothing on the change feed.

/** Groups rows by their `habit_uuid`, each turned into a value by `value`, in row order. */
function byHabit<R extends { habit_uuid: string }, T>(rows: readonly R[], value: (row: R) => T): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    let list = out.get(row.habit_uuid);
    if (!list) out.set(row.habit_uuid, (list = []));
    list.push(value(row));
  }
  return out;
}

/**
 * Each habit's pixels and shapes as values, in their stored order, by habit uuid: of the habits
 * `habitUuids` as stored, or (`rolloutUuid`) as rollout's candidate links have them.
 */
export async function listValues(em: Em, source: { habitUuids: string[] } | { rolloutUuid: string }): Promise<{ pixels: Map<string, Pixel[]>; shapes: Map<string, Shape[]> }> {
  const [prefix, where, param] = 'rolloutUuid' in source ? ['rollout_', 'l.rollout_uuid = ?', source.rolloutUuid] : ['', 'l.habit_uuid = any (?::uuid[])', pgArray(source.habitUuids)];
  const pixels: (Pixel & { habit_uuid: string })[] = await em.execute(
    `select l.habit_uuid, d.x, d.y, c.rgb_hex as "rgbHex", c.deviation
       from ${prefix}habit_pixels l join pixels p on p.uuid = l.pixel_uuid
       join dots d on d.uuid = p.dot_uuid join colors c on c.uuid = p.color_uuid
      where ${where} order by l.position`,
    [param],
  );
  const shapes: (Shape & { habit_uuid: string })[] = await em.execute(
    `select l.habit_uuid, s.type, s.x, s.y, s.width, s.height, s.size, s.rgb_hex as "rgbHex"
       from ${prefix}habit_shapes l join shapes s on s.uuid = l.shape_uuid
      where ${where} order by l.position`,
    [param],
  );
  return {
    pixels: byHabit(pixels, ({ x, y, rgbHex, deviation }) => ({ x, y, rgbHex, deviation })),
    shapes: byHabit(shapes, ({ type, x, y, width, height, size, rgbHex }) => ({ type: type as ShapeType, x, y, width, height, size, rgbHex })),
  };
}

/** Fills `pixels` and `shapes` of each habit from storage, in their stored order. */
export async function loadHabitLists(em: Em, habits: Habit[]): Promise<void> {
  if (habits.length === 0) return;
  const { pixels, shapes } = await listValues(em, { habitUuids: habits.map((h) => h.uuid) });
  for (const habit of habits) {
    habit.pixels = pixels.get(habit.uuid) ?? [];
    habit.shapes = shapes.get(habit.uuid) ?? [];
  }
}

/** The uuid of each pixel of `list` (in order), its dot, color and pixel rows looked up, else created. */
export async function pixelIdsOf(em: Em, list: readonly Pixel[]): Promise<string[]> {
  const dotIds = await lookUpOrCreate(
    em,
    'dots',
    ['x', 'y'],
    ['int', 'int'],
    list.map((p) => [p.x, p.y]),
  );
  const colorIds = await lookUpOrCreate(
    em,
    'colors',
    ['rgb_hex', 'deviation'],
    ['text', 'int'],
    list.map((p) => [p.rgbHex, p.deviation]),
  );
  return lookUpOrCreate(
    em,
    'pixels',
    ['dot_uuid', 'color_uuid'],
    ['uuid', 'uuid'],
    list.map((_, i) => [dotIds[i]!, colorIds[i]!]),
  );
}

/** The uuid of each shape of `list` (in order), looked up, else created. */
export function shapeIdsOf(em: Em, list: readonly Shape[]): Promise<string[]> {
  return lookUpOrCreate(
    em,
    'shapes',
    ['type', 'x', 'y', 'width', 'height', 'size', 'rgb_hex'],
    ['text', 'int', 'int', 'int', 'int', 'int', 'text'],
    list.map((s) => [s.type, s.x, s.y, s.width, s.height, s.size, s.rgbHex]),
  );
}

/** Makes the stored pixel list of a flushed habit equal `habit.pixels`; removes orphans. */
export async function storePixels(em: Em, habit: Habit): Promise<void> {
  const removed = await replaceLinks(em, 'habit_pixels', 'pixel_uuid', habit.uuid, await pixelIdsOf(em, habit.pixels));
  await removeOrphanPixels(em, removed);
}

/** Makes the stored shape list of a flushed habit equal `habit.shapes`; removes orphans. */
export async function storeShapes(em: Em, habit: Habit): Promise<void> {
  const removed = await replaceLinks(em, 'habit_shapes', 'shape_uuid', habit.uuid, await shapeIdsOf(em, habit.shapes));
  await removeOrphanShapes(em, removed);
}

/** Before a habit is deleted: drops its links and the pixels and shapes only it used. */
export async function releaseHabitLists(em: Em, habitUuid: string): Promise<void> {
  await storeHabitLinks(em, habitUuid, [], []);
}

/** Sets a habit's pixel and shape links to exactly these ids, in order; removes orphans. */
export async function storeHabitLinks(em: Em, habitUuid: string, pixelIds: string[], shapeIds: string[]): Promise<void> {
  await removeOrphanPixels(em, await replaceLinks(em, 'habit_pixels', 'pixel_uuid', habitUuid, pixelIds));
  await removeOrphanShapes(em, await replaceLinks(em, 'habit_shapes', 'shape_uuid', habitUuid, shapeIds));
}

/**
 * Returns the uuid of each value tuple (in input order), inserting the missing ones. `columns`
 * form the table's unique key; `types` are their PostgreSQL types for unnest.
 */
async function lookUpOrCreate(em: Em, table: string, columns: string[], types: string[], values: (string | number)[][]): Promise<string[]> {
  if (values.length === 0) return [];
  const byColumn = columns.map((_, c) => pgArray(values.map((v) => v[c]!)));
  const unnest = `unnest(${types.map((t) => `?::${t}[]`).join(', ')})`;
  // Zipped unnest keeps input order; duplicates within the batch are skipped like existing rows.
  await em.execute(
    `insert into ${table} (uuid, ${columns.join(', ')}) select * from unnest(?::uuid[], ${types.map((t) => `?::${t}[]`).join(', ')})
     on conflict do nothing`,
    [pgArray(values.map(() => uuidv7())), ...byColumn],
  );
  const rows: Record<string, string | number>[] = await em.execute(
    `select t.uuid, ${columns.map((c) => `t.${c}`).join(', ')} from ${table} t
      join ${unnest} as v(${columns.join(', ')}) using (${columns.join(', ')})`,
    byColumn,
  );
  const key = (v: (string | number)[]): string => v.join('\u0000');
  const ids = new Map(rows.map((r) => [key(columns.map((c) => r[c]!)), String(r.uuid)]));
  return values.map((v) => ids.get(key(v))!);
}

/** Sets a habit's links to exactly `ids` (position = index); returns the ids it no longer links. */
async function replaceLinks(em: Em, table: string, column: string, habitUuid: string, ids: string[]): Promise<string[]> {
  const removed: Record<string, string>[] = await em.execute(
    `delete from ${table} where habit_uuid = ? and not (${column} = any (?::uuid[])) returning ${column}`,
    [habitUuid, pgArray(ids)],
  );
  if (ids.length > 0) {
    // Only rows whose position really changes are rewritten, so unchanged links stay off the feed.
    await em.execute(
      `insert into ${table} (habit_uuid, ${column}, position)
         select ?, id, n - 1 from unnest(?::uuid[]) with ordinality u(id, n)
       on conflict (habit_uuid, ${column}) do update set position = excluded.position
         where ${table}.position <> excluded.position`,
      [habitUuid, pgArray(ids)],
    );
  }
  return removed.map((r) => r[column]!);
}

/** Deletes those of `pixelIds` no habit and no rollout candidate links, and their dots and colors no pixel uses. */
export async function removeOrphanPixels(em: Em, pixelIds: string[]): Promise<void> {
  if (pixelIds.length === 0) return;
  const gone: { dot_uuid: string; color_uuid: string }[] = await em.execute(
    `delete from pixels p where p.uuid = any (?::uuid[])
        and not exists (select 1 from habit_pixels hp where hp.pixel_uuid = p.uuid)
        and not exists (select 1 from rollout_habit_pixels rp where rp.pixel_uuid = p.uuid)
      returning p.dot_uuid, p.color_uuid`,
    [pgArray(pixelIds)],
  );
  if (gone.length === 0) return;
  await em.execute(
    'delete from dots d where d.uuid = any (?::uuid[]) and not exists (select 1 from pixels p where p.dot_uuid = d.uuid)',
    [pgArray(gone.map((g) => g.dot_uuid))],
  );
  await em.execute(
    'delete from colors c where c.uuid = any (?::uuid[]) and not exists (select 1 from pixels p where p.color_uuid = c.uuid)',
    [pgArray(gone.map((g) => g.color_uuid))],
  );
}

/** Deletes those of `shapeIds` no habit and no rollout candidate links. */
export async function removeOrphanShapes(em: Em, shapeIds: string[]): Promise<void> {
  if (shapeIds.length === 0) return;
  await em.execute(
    `delete from shapes s where s.uuid = any (?::uuid[])
        and not exists (select 1 from habit_shapes hs where hs.shape_uuid = s.uuid)
        and not exists (select 1 from rollout_habit_shapes rs where rs.shape_uuid = s.uuid)`,
    [pgArray(shapeIds)],
  );
}
