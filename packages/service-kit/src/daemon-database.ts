import Database from 'better-sqlite3';

// The daemon database (docs/domain.md): its schema, its format, and how it is built from the
// tables that decide it. Read replicas build every file daemons download with it; the write
// service builds a rollout's preview with it, so both agree on every byte.

/**
 * Scope key of the global scope (global habits only). Account scopes use their logical id, an
 * int32; this key is outside that range, so a habit of logical id 0 is an account habit like any.
 */
export const GLOBAL_SCOPE = 2 ** 32;

/** A table a daemon database is built from: the columns the build reads, and its primary key. */
export interface SourceTable {
  columns: readonly string[];
  primaryKey: readonly string[];
}

/** A habit's columns besides its uuid: in `habits`, and in a rollout's candidate `rollout_habits`. */
const HABIT_VALUES = [
  'account_logical_id',
  'priority',
  'trigger_shell',
  'log_template',
  'post_timeout_ms',
  'comment',
  'sequence',
  'context',
  'action',
  'is_interruption',
  'is_active',
  'updated_at',
] as const;

/**
 * The tables `buildExport` reads, as the change feed carries them (values in their feed form:
 * uuids and timestamps as text, booleans as 0/1): the habits and what they draw, and the staged
 * rollouts' candidate rows (docs/decisions.md "Staged rollouts").
 */
export const SOURCE_TABLES = {
  habits: { columns: ['uuid', ...HABIT_VALUES], primaryKey: ['uuid'] },
  dots: { columns: ['uuid', 'x', 'y'], primaryKey: ['uuid'] },
  colors: { columns: ['uuid', 'rgb_hex', 'deviation'], primaryKey: ['uuid'] },
  pixels: { columns: ['uuid', 'dot_uuid', 'color_uuid'], primaryKey: ['uuid'] },
  habit_pixels: { columns: ['habit_uuid', 'pixel_uuid', 'position'], primaryKey: ['habit_uuid', 'pixel_uuid'] },
  shapes: { columns: ['uuid', 'type', 'x', 'y', 'width', 'height', 'size', 'rgb_hex'], primaryKey: ['uuid'] },
  habit_shapes: { columns: ['habit_uuid', 'shape_uuid', 'position'], primaryKey: ['habit_uuid', 'shape_uuid'] },
  rollout_habits: { columns: ['rollout_uuid', 'habit_uuid', 'deleted', ...HABIT_VALUES], primaryKey: ['rollout_uuid', 'habit_uuid'] },
  rollout_habit_pixels: { columns: ['rollout_uuid', 'habit_uuid', 'pixel_uuid', 'position'], primaryKey: ['rollout_uuid', 'habit_uuid', 'pixel_uuid'] },
  rollout_habit_shapes: { columns: ['rollout_uuid', 'habit_uuid', 'shape_uuid', 'position'], primaryKey: ['rollout_uuid', 'habit_uuid', 'shape_uuid'] },
} as const satisfies Record<string, SourceTable>;

/** `create table` for a source table (no constraints besides the primary key: rows come as the feed has them). */
export const sourceTableDdl = (name: string, t: SourceTable): string =>
  `create table if not exists ${name} (${t.columns.join(', ')}, primary key (${t.primaryKey.join(', ')})) without rowid;`;

/** A value as SQLite stores it. */
export type SqlValue = string | number | bigint | Buffer | null;

/** A fed value as the source tables keep it: JSON booleans as 0/1 (SQLite has no boolean), other objects as JSON text, absent as NULL. */
export function sqlValue(v: unknown): SqlValue {
  if (v === undefined || v === null) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number' || typeof v === 'string') return v;
  return JSON.stringify(v);
}

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

const HABIT_COLUMNS = HABIT_VALUES.join(', ');

/**
 * The tables a build reads: the source tables, or with `@rollout` the source tables with that
 * rollout's candidate rows in place of the habits it changes (a deleted habit drops out with its links).
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
 * must not exist, from the SOURCE_TABLES of `db` (a replica's read model), in one read transaction: active habits of the
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
