import Database from 'better-sqlite3';
import { GLOBAL_SCOPE } from '../store/versions.js';

/** Version of the daemon database schema below; changes only with a new contract. */
export const EXPORT_SCHEMA_VERSION = 1;
export const EXPORT_FILE_NAME = 'titanbotd.sqlite';
export const EXPORT_MEDIA_TYPE = 'application/vnd.sqlite3';

/**
 * How values are stored, beyond the schema: 2 = uuids as TEXT holding their 16 raw bytes, as the
 * original system's exporter wrote them (1 stored them as BLOBs). Raised whenever the bytes of
 * the same rows change, so versions change with them.
 */
export const EXPORT_LAYOUT = 2;

/**
 * Everything besides the rows that decides an export's bytes: the schema version, the layout and
 * the SQLite library that writes the file (another SQLite may lay out the same rows differently).
 * Part of every version, so a replica that writes another format reports other versions and
 * daemons fetch the new bytes.
 */
export function exportFormat(): string {
  const db = new Database(':memory:');
  try {
    return `schema ${EXPORT_SCHEMA_VERSION}; layout ${EXPORT_LAYOUT}; sqlite ${String(db.prepare('select sqlite_version()').pluck().get())}`;
  } finally {
    db.close();
  }
}

/** The daemon database schema, exactly as docs/domain.md gives it (existing daemons read it). */
const EXPORT_DDL = [
  `create table export.habits(uuid BLOB NOT NULL PRIMARY KEY, is_active INTEGER NOT NULL CHECK (is_active IN (0,1)),
       account_logical_id INTEGER, priority INTEGER, trigger_shell TEXT, log_template TEXT,
       post_timeout_ms INTEGER, action TEXT, comment TEXT, sequence INTEGER, context TEXT,
       is_interruption INTEGER NOT NULL DEFAULT 1, updated_at TEXT NOT NULL)`,
  'create table export.habit_pixels(habit_uuid BLOB NOT NULL, pixel_uuid BLOB NOT NULL, PRIMARY KEY (habit_uuid, pixel_uuid))',
  'create table export.pixels(uuid BLOB NOT NULL PRIMARY KEY, dot_uuid BLOB NOT NULL, color_uuid BLOB NOT NULL)',
  'create table export.dots(uuid BLOB NOT NULL PRIMARY KEY, x INTEGER NOT NULL, y INTEGER NOT NULL)',
  'create table export.colors(uuid BLOB NOT NULL PRIMARY KEY, rgb_hex TEXT NOT NULL, deviation INTEGER)',
  'create table export.habit_shapes(habit_uuid BLOB NOT NULL, shape_uuid BLOB NOT NULL, PRIMARY KEY (habit_uuid, shape_uuid))',
  `create table export.shapes(uuid BLOB NOT NULL PRIMARY KEY, type TEXT NOT NULL, x INTEGER NOT NULL, y INTEGER NOT NULL,
       width INTEGER NOT NULL, height INTEGER NOT NULL, rgb_hex TEXT NOT NULL, size INTEGER NOT NULL)`,
];

/**
 * UUID text to its 16 raw bytes stored as TEXT, in SQL: the columns are declared BLOB (no
 * affinity), and the original exporter bound every value as text, so existing daemons read
 * `typeof(uuid) = 'text'` holding the 16 bytes (docs/legacy.md §6). `hex(uuid)` gives the 32 digits
 * either way; a comparison with a blob literal does not match, one with `CAST(x'..' AS TEXT)` does.
 */
const blob = (column: string): string => `cast(unhex(replace(${column}, '-', '')) as text)`;

const HABIT_COLUMNS = 'account_logical_id, priority, trigger_shell, log_template, post_timeout_ms, comment, sequence, context, action, is_interruption, is_active, updated_at';

/**
 * The tables a build reads: the mirror's, or with `@rollout` the mirror's with that rollout's
 * candidate rows in place of the habits it changes (a deleted habit drops out with its links).
 */
function sources(rollout: boolean): { habits: string; habitPixels: string; habitShapes: string } {
  if (!rollout) return { habits: 'main.habits', habitPixels: 'main.habit_pixels', habitShapes: 'main.habit_shapes' };
  const changed = 'select habit_uuid from main.rollout_habits where rollout_uuid = @rollout';
  return {
    habits: `(select uuid, ${HABIT_COLUMNS} from main.habits where uuid not in (${changed})
              union all select habit_uuid, ${HABIT_COLUMNS} from main.rollout_habits where rollout_uuid = @rollout and deleted = 0)`,
    habitPixels: `(select habit_uuid, pixel_uuid from main.habit_pixels where habit_uuid not in (${changed})
                   union all select habit_uuid, pixel_uuid from main.rollout_habit_pixels where rollout_uuid = @rollout)`,
    habitShapes: `(select habit_uuid, shape_uuid from main.habit_shapes where habit_uuid not in (${changed})
                   union all select habit_uuid, shape_uuid from main.rollout_habit_shapes where rollout_uuid = @rollout)`,
  };
}

/**
 * Writes the daemon database of `scope` (GLOBAL_SCOPE or an account logical id) to `file`, which
 * must not exist, from the read model behind `db`, in one read transaction: active habits of the
 * scope and the global ones, their pixels (dot + color) and shapes; with `rollout`, that rollout's
 * candidate content of the scope (its changed habits as it will leave them). Deterministic: rows
 * go in in a fixed order (habits by priority descending, NULLs last, then uuid, as
 * docs/domain.md requires; everything else by key), so the same content gives the same bytes with
 * the same SQLite, whether it is a candidate or the stable content a completed rollout left.
 * Synchronous: it runs between feed batches, so it always sees one revision.
 */
export function buildExport(db: Database.Database, file: string, scope: number, rollout?: string): void {
  const inScope =
    scope === GLOBAL_SCOPE ? 'h.is_active = 1 and h.account_logical_id is null' : 'h.is_active = 1 and (h.account_logical_id = @scope or h.account_logical_id is null)';
  const params = { ...(scope === GLOBAL_SCOPE ? {} : { scope }), ...(rollout ? { rollout } : {}) };
  const src = sources(rollout !== undefined);
  db.prepare('attach database ? as export').run(file);
  try {
    // No rollback journal: a failed build leaves a temp file that is deleted, never served.
    db.exec('pragma export.journal_mode = off; pragma export.page_size = 4096');
    db.transaction(() => {
      for (const ddl of EXPORT_DDL) db.exec(ddl);
      const run = (sql: string): void => void db.prepare(sql).run(params);
      run(`insert into export.habits
        select ${blob('h.uuid')}, h.is_active, h.account_logical_id, h.priority, h.trigger_shell, h.log_template,
               h.post_timeout_ms, h.action, h.comment, h.sequence, h.context, h.is_interruption,
               strftime('%Y-%m-%d %H:%M:%S', h.updated_at)
        from ${src.habits} h where ${inScope}
        order by h.priority desc nulls last, h.uuid`);
      run(`insert into export.habit_pixels
        select ${blob('hp.habit_uuid')}, ${blob('hp.pixel_uuid')}
        from ${src.habitPixels} hp join ${src.habits} h on h.uuid = hp.habit_uuid where ${inScope}
        order by hp.habit_uuid, hp.pixel_uuid`);
      run(`insert into export.pixels
        select ${blob('p.uuid')}, ${blob('p.dot_uuid')}, ${blob('p.color_uuid')} from main.pixels p
        where p.uuid in (select hp.pixel_uuid from ${src.habitPixels} hp join ${src.habits} h on h.uuid = hp.habit_uuid where ${inScope})
        order by p.uuid`);
      run(`insert into export.dots
        select ${blob('d.uuid')}, d.x, d.y from main.dots d
        where d.uuid in (select p.dot_uuid from main.pixels p join ${src.habitPixels} hp on hp.pixel_uuid = p.uuid
                         join ${src.habits} h on h.uuid = hp.habit_uuid where ${inScope})
        order by d.uuid`);
      run(`insert into export.colors
        select ${blob('c.uuid')}, c.rgb_hex, c.deviation from main.colors c
        where c.uuid in (select p.color_uuid from main.pixels p join ${src.habitPixels} hp on hp.pixel_uuid = p.uuid
                         join ${src.habits} h on h.uuid = hp.habit_uuid where ${inScope})
        order by c.uuid`);
      run(`insert into export.habit_shapes
        select ${blob('hs.habit_uuid')}, ${blob('hs.shape_uuid')}
        from ${src.habitShapes} hs join ${src.habits} h on h.uuid = hs.habit_uuid where ${inScope}
        order by hs.habit_uuid, hs.shape_uuid`);
      run(`insert into export.shapes
        select ${blob('s.uuid')}, s.type, s.x, s.y, s.width, s.height, s.rgb_hex, s.size from main.shapes s
        where s.uuid in (select hs.shape_uuid from ${src.habitShapes} hs join ${src.habits} h on h.uuid = hs.habit_uuid where ${inScope})
        order by s.uuid`);
    })();
  } finally {
    db.exec('detach database export');
  }
}
