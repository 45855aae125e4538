import { SOURCE_TABLES, sourceTableDdl, sqlValue, type SourceTable, type SqlValue } from '@titanbot/service-kit/daemon-database';

/**
 * The read model: a local SQLite mirror of the fed tables (the columns the read service uses;
 * other columns on the feed are ignored), plus the feed checkpoint and per-scope versions.
 * Values keep their feed form: uuids and timestamps as text, booleans as 0/1.
 */
export type MirroredTable = SourceTable;

export const MIRRORED_TABLES: Readonly<Record<string, MirroredTable>> = {
  legions: { columns: ['uuid', 'title', 'ext_title', 'pay_day_of_month'], primaryKey: ['uuid'] },
  accounts: {
    columns: ['uuid', 'logical_id', 'first_name', 'last_name', 'birth_date', 'gender', 'google_login', 'google_password', 'is_empire_sleeping', 'legion_uuid'],
    primaryKey: ['uuid'],
  },
  devices: {
    columns: [
      'uuid',
      'physical_id',
      'is_active',
      'is_ssh',
      'is_need_to_update',
      'activity_type',
      'is_full_server_detection',
      'is_able_to_clear_cache',
      'go_time_limit_seconds',
      'current_account_uuid',
    ],
    primaryKey: ['uuid'],
  },
  device_accounts: { columns: ['device_uuid', 'account_uuid'], primaryKey: ['device_uuid', 'account_uuid'] },
  sshes: { columns: ['device_uuid', 'public_key', 'private_key', 'server_device_internal_port'], primaryKey: ['device_uuid'] },
  empire_dates: { columns: ['uuid', 'date'], primaryKey: ['uuid'] },
  daemon_tokens: {
    columns: ['uuid', 'device_uuid', 'token_hash', 'prefix', 'create_time', 'expire_time', 'revoke_time', 'kind'],
    primaryKey: ['uuid'],
  },
  ...SOURCE_TABLES,
  // Staged rollouts (docs/decisions.md "Staged rollouts"): `steps` is JSON text.
  rollouts: { columns: ['uuid', 'state', 'account_logical_id', 'steps', 'current_step'], primaryKey: ['uuid'] },
};

/** DDL of the read model. Secondary indexes serve the export and daemon API queries. */
export const READ_MODEL_DDL = `
${Object.entries(MIRRORED_TABLES)
  .map(([name, t]) => sourceTableDdl(name, t))
  .join('\n')}
create index if not exists habits_scope_idx on habits (account_logical_id, is_active);
create index if not exists habit_pixels_pixel_idx on habit_pixels (pixel_uuid);
create index if not exists habit_shapes_shape_idx on habit_shapes (shape_uuid);
create index if not exists pixels_dot_idx on pixels (dot_uuid);
create index if not exists pixels_color_idx on pixels (color_uuid);
create index if not exists device_accounts_account_idx on device_accounts (account_uuid);
create index if not exists accounts_legion_idx on accounts (legion_uuid);

-- The feed position the mirror reflects, written in the same transaction as the rows.
create table if not exists checkpoint (
  singleton integer primary key check (singleton = 1),
  epoch text not null,
  revision integer not null
);
-- Earlier replicas kept revision-based versions here; versions now follow content, computed at start-up.
drop table if exists scope_versions;
`;

/**
 * Drops the mirror when a table's columns are not this release's (a replica upgraded over a model
 * an older release wrote): with the checkpoint gone, the replica rebuilds from a snapshot, as it
 * does on first start. Returns whether it dropped anything.
 */
export function dropOutdatedMirror(db: { prepare(sql: string): { all(): unknown[] }; exec(sql: string): unknown }): boolean {
  const outdated = Object.entries(MIRRORED_TABLES).some(([name, t]) => {
    const columns = (db.prepare(`pragma table_info(${name})`).all() as { name: string }[]).map((c) => c.name);
    return columns.length > 0 && columns.join() !== t.columns.join();
  });
  if (outdated) db.exec(`${Object.keys(MIRRORED_TABLES).map((name) => `drop table if exists ${name};`).join('\n')}\ndrop table if exists checkpoint;`);
  return outdated;
}

/** A fed row's values in the mirror's column order. */
export const mirroredValues = (table: string, row: Record<string, unknown>): SqlValue[] => MIRRORED_TABLES[table]!.columns.map((c) => sqlValue(row[c]));
