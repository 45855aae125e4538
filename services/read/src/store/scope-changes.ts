import type Database from 'better-sqlite3';
import type { FeedEvent } from './read-model.js';
import { mirroredValues, MIRRORED_TABLES, type SqlValue } from './schema.js';
import { GLOBAL_SCOPE } from './versions.js';

type Row = Record<string, unknown>;

/**
 * The scopes whose export `event` changes (DESIGN.md "Versions and exports"): a habit that was
 * or becomes exported (insert, update, delete, deactivation, move between accounts), a change
 * to an exported habit's pixel or shape list, and a changed pixel, dot, color or shape in use.
 * Read before the event is written, so the old row is still there; `sql` prepares (once) a
 * statement on the writer connection.
 */
export function scopesChangedBy(sql: (text: string) => Database.Statement, event: FeedEvent): number[] {
  const { table, row } = event;
  switch (table) {
    case 'habits': {
      const old = sql('select account_logical_id, is_active from habits where uuid = ?').get(row['uuid']) as Row | undefined;
      const scopes: number[] = [];
      if (old && old['is_active']) scopes.push(scopeOf(old['account_logical_id']));
      if (event.operation === 'upsert' && row['is_active']) scopes.push(scopeOf(row['account_logical_id']));
      return scopes;
    }
    case 'habit_pixels':
    case 'habit_shapes': {
      const habit = sql('select account_logical_id from habits where uuid = ? and is_active = 1').get(row['habit_uuid']) as Row | undefined;
      return habit ? [scopeOf(habit['account_logical_id'])] : [];
    }
    case 'pixels':
    case 'dots':
    case 'colors':
    case 'shapes': {
      // Shared value rows are created and deleted, not edited; should one change in place,
      // every habit using it is re-exported.
      if (event.operation === 'delete' || !changesExistingRow(sql, table, row)) return [];
      const users: Record<string, string> = {
        pixels: 'select h.account_logical_id s from habit_pixels hp join habits h on h.uuid = hp.habit_uuid where hp.pixel_uuid = ? and h.is_active = 1',
        dots: 'select h.account_logical_id s from pixels p join habit_pixels hp on hp.pixel_uuid = p.uuid join habits h on h.uuid = hp.habit_uuid where p.dot_uuid = ? and h.is_active = 1',
        colors: 'select h.account_logical_id s from pixels p join habit_pixels hp on hp.pixel_uuid = p.uuid join habits h on h.uuid = hp.habit_uuid where p.color_uuid = ? and h.is_active = 1',
        shapes: 'select h.account_logical_id s from habit_shapes hs join habits h on h.uuid = hs.habit_uuid where hs.shape_uuid = ? and h.is_active = 1',
      };
      return (sql(users[table]!).all(row['uuid']) as Row[]).map((r) => scopeOf(r['s']));
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

const scopeOf = (accountLogicalId: unknown): number => (accountLogicalId === null || accountLogicalId === undefined ? GLOBAL_SCOPE : Number(accountLogicalId));
