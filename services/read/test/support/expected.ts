import type Database from 'better-sqlite3';
import type pg from 'pg';

/** Every table of a daemon database as sorted rows (uuids as upper-case hex), habits in file order. */
export type ExportRows = Record<string, unknown[][]>;

const hex = (column: string): string => `upper(replace(${column}::text, '-', ''))`;

/**
 * What the daemon database of a scope must hold, computed independently from the write side's
 * PostgreSQL (docs/domain.md): active habits of the account and the global ones, in priority order,
 * their pixel/shape links and the pixels, dots, colors and shapes they use.
 */
export async function expectedExport(db: pg.Client, logicalId: number | undefined): Promise<ExportRows> {
  const inScope = logicalId === undefined ? 'h.is_active and h.account_logical_id is null' : `h.is_active and (h.account_logical_id = ${Number(logicalId)} or h.account_logical_id is null)`;
  const rows = async (sql: string): Promise<unknown[][]> => (await db.query({ text: sql, rowMode: 'array' })).rows as unknown[][];
  return {
    habits: await rows(`select ${hex('h.uuid')}, 1, h.account_logical_id, h.priority, h.trigger_shell, h.log_template, h.post_timeout_ms,
        h.action, h.comment, h.sequence, h.context, case when h.is_interruption then 1 else 0 end,
        to_char(h.updated_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')
      from habits h where ${inScope} order by h.priority desc nulls last, h.uuid`),
    habit_pixels: await rows(`select ${hex('hp.habit_uuid')}, ${hex('hp.pixel_uuid')} from habit_pixels hp join habits h on h.uuid = hp.habit_uuid where ${inScope} order by 1, 2`),
    pixels: await rows(`select distinct ${hex('p.uuid')}, ${hex('p.dot_uuid')}, ${hex('p.color_uuid')} from pixels p
      join habit_pixels hp on hp.pixel_uuid = p.uuid join habits h on h.uuid = hp.habit_uuid where ${inScope} order by 1`),
    dots: await rows(`select distinct ${hex('d.uuid')}, d.x, d.y from dots d join pixels p on p.dot_uuid = d.uuid
      join habit_pixels hp on hp.pixel_uuid = p.uuid join habits h on h.uuid = hp.habit_uuid where ${inScope} order by 1`),
    colors: await rows(`select distinct ${hex('c.uuid')}, c.rgb_hex, c.deviation from colors c join pixels p on p.color_uuid = c.uuid
      join habit_pixels hp on hp.pixel_uuid = p.uuid join habits h on h.uuid = hp.habit_uuid where ${inScope} order by 1`),
    habit_shapes: await rows(`select ${hex('hs.habit_uuid')}, ${hex('hs.shape_uuid')} from habit_shapes hs join habits h on h.uuid = hs.habit_uuid where ${inScope} order by 1, 2`),
    shapes: await rows(`select distinct ${hex('s.uuid')}, s.type, s.x, s.y, s.width, s.height, s.rgb_hex, s.size from shapes s
      join habit_shapes hs on hs.shape_uuid = s.uuid join habits h on h.uuid = hs.habit_uuid where ${inScope} order by 1`),
  };
}

/** The same tables read from a downloaded daemon database (habits in file order, no ORDER BY). */
export function exportRows(file: Database.Database): ExportRows {
  const rows = (sql: string): unknown[][] => file.prepare(sql).raw().all() as unknown[][];
  return {
    habits: rows(`select hex(uuid), is_active, account_logical_id, priority, trigger_shell, log_template, post_timeout_ms,
        action, comment, sequence, context, is_interruption, updated_at from habits`),
    habit_pixels: rows('select hex(habit_uuid), hex(pixel_uuid) from habit_pixels order by 1, 2'),
    pixels: rows('select hex(uuid), hex(dot_uuid), hex(color_uuid) from pixels order by 1'),
    dots: rows('select hex(uuid), x, y from dots order by 1'),
    colors: rows('select hex(uuid), rgb_hex, deviation from colors order by 1'),
    habit_shapes: rows('select hex(habit_uuid), hex(shape_uuid) from habit_shapes order by 1, 2'),
    shapes: rows('select hex(uuid), type, x, y, width, height, rgb_hex, size from shapes order by 1'),
  };
}
