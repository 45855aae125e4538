import type Database from 'better-sqlite3';
import type { FeedEvent } from './feed-event.js';
import type { SqlValue } from '@titanbot/service-kit/daemon-database';
import { mirroredValues, MIRRORED_TABLES } from './schema.js';

type Row = Record<string, unknown>;

/**
 * The habits whose export element `event` may change (their old element must be taken out before
 * it is written): the habit itself, the habit of a pixel or shape link, and every habit using a
 * shared pixel, dot, color or shape that is edited in place. Shared value rows are created and
 * deleted, not edited, and a row being created or deleted has no links at commit, so only an
 * in-place edit is looked up. `sql` prepares (once) a statement on the writer connection.
 */
export function habitsTouchedBy(sql: (text: string) => Database.Statement, event: FeedEvent): string[] {
  const { table, row } = event;
  switch (table) {
    case 'habits':
      return [String(row['uuid'])];
    case 'habit_pixels':
    case 'habit_shapes':
      return [String(row['habit_uuid'])];
    case 'pixels':
    case 'dots':
    case 'colors':
    case 'shapes': {
      if (event.operation === 'delete' || !changesExistingRow(sql, table, row)) return [];
      const users: Record<string, string> = {
        pixels: 'select habit_uuid from habit_pixels where pixel_uuid = ?',
        dots: 'select hp.habit_uuid from pixels p join habit_pixels hp on hp.pixel_uuid = p.uuid where p.dot_uuid = ?',
        colors: 'select hp.habit_uuid from pixels p join habit_pixels hp on hp.pixel_uuid = p.uuid where p.color_uuid = ?',
        shapes: 'select habit_uuid from habit_shapes where shape_uuid = ?',
      };
      return sql(users[table]!).pluck().all(row['uuid']) as string[];
    }
    default:
      return [];
  }
}

function changesExistingRow(sql: (text: string) => Database.Statement, table: string, row: Row): boolean {
  const columns = MIRRORED_TABLES[table]!.columns;
  const old = sql(`select ${columns.join(', ')} from ${table} where uuid = ?`).raw().get(row['uuid']) as SqlValue[] | undefined;
  if (!old) return false;
  const next = mirroredValues(table, row);
  return old.some((v, i) => v !== next[i]);
}
