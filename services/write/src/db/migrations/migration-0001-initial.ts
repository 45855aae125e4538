import { Migration } from '@mikro-orm/migrations';

/**
 * The initial schema: the aggregates, the change feed and its triggers.
 *
 * Feed rules (docs/decisions.md, "Change feed"):
 * - every fed table has an AFTER ROW trigger appending one event per changed row, in the same
 *   transaction, so no use case can forget to publish a change;
 * - revisions come from the single `feed_state` row (`UPDATE ... RETURNING`): the row lock is held
 *   until commit, so revisions are gapless (a rollback takes its revision back) and in commit order;
 * - one NOTIFY per transaction (identical payloads collapse) wakes the subscribers.
 * The SQL avoids question marks: MikroORM passes it through knex.raw, where `?` is a binding.
 */
export class MigrationInitial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table legions (
  uuid uuid primary key,
  title text not null check (title <> ''),
  ext_title text,
  pay_day_of_month smallint check (pay_day_of_month between 1 and 31),
  version integer not null default 1
);

create table accounts (
  uuid uuid primary key,
  logical_id integer not null unique check (logical_id >= 1),
  first_name text not null,
  last_name text not null,
  birth_date date not null,
  gender text not null check (gender in ('male', 'female')),
  google_login text not null,
  google_password text not null,
  is_empire_sleeping boolean not null default false,
  legion_uuid uuid references legions (uuid) on delete set null,
  version integer not null default 1
);
create index accounts_legion_uuid_idx on accounts (legion_uuid);

create table devices (
  uuid uuid primary key,
  physical_id integer not null unique,
  is_active boolean not null default false,
  is_ssh boolean not null default false,
  is_need_to_update boolean not null default false,
  activity_type text not null default 'rowgplay' check (activity_type in ('rowgplay', 'ajagplay')),
  is_full_server_detection boolean not null default false,
  is_able_to_clear_cache boolean not null default false,
  go_time_limit_seconds integer not null default 100 check (go_time_limit_seconds >= 0),
  current_account_uuid uuid references accounts (uuid) on delete set null,
  version integer not null default 1
);
create index devices_current_account_uuid_idx on devices (current_account_uuid);

create table device_accounts (
  device_uuid uuid not null references devices (uuid) on delete cascade,
  account_uuid uuid not null references accounts (uuid) on delete cascade,
  primary key (device_uuid, account_uuid)
);
create index device_accounts_account_uuid_idx on device_accounts (account_uuid);

create table sshes (
  device_uuid uuid primary key references devices (uuid) on delete cascade,
  public_key text not null,
  private_key text not null,
  server_device_internal_port integer not null unique check (server_device_internal_port between 1 and 65535),
  version integer not null default 1
);

create table habits (
  uuid uuid primary key,
  account_logical_id integer,
  priority integer,
  trigger_shell text,
  log_template text,
  post_timeout_ms integer check (post_timeout_ms >= 0),
  comment text,
  sequence integer,
  context text,
  action text,
  is_interruption boolean not null default true,
  is_active boolean not null default true,
  updated_at timestamptz not null,
  version integer not null default 1
);
create index habits_account_logical_id_idx on habits (account_logical_id);

create table dots (
  uuid uuid primary key,
  x integer not null check (x >= 1),
  y integer not null check (y >= 1),
  unique (x, y)
);

create table colors (
  uuid uuid primary key,
  rgb_hex text not null check (rgb_hex ~ '^[0-9A-F]{6}$'),
  deviation integer not null default 0 check (deviation >= 0),
  unique (rgb_hex, deviation)
);

create table pixels (
  uuid uuid primary key,
  dot_uuid uuid not null references dots (uuid),
  color_uuid uuid not null references colors (uuid),
  unique (dot_uuid, color_uuid)
);
create index pixels_color_uuid_idx on pixels (color_uuid);

create table habit_pixels (
  habit_uuid uuid not null references habits (uuid) on delete cascade,
  pixel_uuid uuid not null references pixels (uuid),
  position integer not null,
  primary key (habit_uuid, pixel_uuid)
);
create index habit_pixels_pixel_uuid_idx on habit_pixels (pixel_uuid);

create table shapes (
  uuid uuid primary key,
  type text not null check (type in ('rectangle', 'circle', 'triangle', 'irregular')),
  x integer not null,
  y integer not null,
  width integer not null,
  height integer not null,
  size integer not null check (size >= 1),
  rgb_hex text not null check (rgb_hex ~ '^[0-9A-F]{6}$'),
  unique (type, x, y, width, height, size, rgb_hex)
);

create table habit_shapes (
  habit_uuid uuid not null references habits (uuid) on delete cascade,
  shape_uuid uuid not null references shapes (uuid),
  position integer not null,
  primary key (habit_uuid, shape_uuid)
);
create index habit_shapes_shape_uuid_idx on habit_shapes (shape_uuid);

create table empire_dates (
  uuid uuid primary key,
  date date not null unique,
  version integer not null default 1
);

create table daemon_tokens (
  uuid uuid primary key,
  device_uuid uuid not null references devices (uuid) on delete cascade,
  token_hash text not null unique,
  prefix text not null,
  create_time timestamptz not null,
  expire_time timestamptz not null,
  revoke_time timestamptz,
  rotate_time timestamptz,
  rotated_from_uuid uuid,
  version integer not null default 1
);
create index daemon_tokens_device_uuid_idx on daemon_tokens (device_uuid);

-- Not fed: logs stay on the write side.
create table log_entries (
  id bigserial primary key,
  device_uuid uuid not null,
  line text not null,
  log_time timestamptz not null,
  receive_time timestamptz not null default now()
);
create index log_entries_log_time_idx on log_entries (log_time, id);
create index log_entries_device_idx on log_entries (device_uuid, log_time, id);

-- AIP-155 request ids: the first response of a create, replayed on retry.
create table request_ids (
  method text not null,
  request_id text not null,
  response bytea not null,
  create_time timestamptz not null default now(),
  primary key (method, request_id)
);
create index request_ids_create_time_idx on request_ids (create_time);

create table feed_state (
  singleton boolean primary key default true check (singleton),
  epoch uuid not null default gen_random_uuid(),
  head_revision bigint not null default 0,
  -- Lowest revision still in feed_events (head_revision + 1 when empty); older ones were pruned.
  retained_from bigint not null default 1
);
insert into feed_state default values;

create table feed_events (
  revision bigint primary key,
  table_name text not null,
  operation text not null check (operation in ('upsert', 'delete')),
  row jsonb not null,
  commit_time timestamptz not null default clock_timestamp()
);
create index feed_events_commit_time_idx on feed_events (commit_time);

-- Trigger arguments, when given, name the only columns that may leave the write side.
create function feed_append() returns trigger language plpgsql as $fn$
declare
  rev bigint;
  doc jsonb;
begin
  update feed_state set head_revision = head_revision + 1 returning head_revision into rev;
  if tg_op = 'DELETE' then
    doc := to_jsonb(old);
  else
    doc := to_jsonb(new);
  end if;
  if tg_nargs > 0 then
    select coalesce(jsonb_object_agg(key, value), '{}'::jsonb) into doc
      from jsonb_each(doc) where key = any (tg_argv);
  end if;
  insert into feed_events (revision, table_name, operation, row)
    values (rev, tg_table_name, case when tg_op = 'DELETE' then 'delete' else 'upsert' end, doc);
  perform pg_notify('titanbot_feed', '');
  return null;
end
$fn$;
`);
    for (const table of TABLES) {
      const columns = COLUMNS[table];
      const args = columns ? columns.map((c) => `'${c}'`).join(', ') : '';
      this.addSql(
        `create trigger ${table}_feed after insert or update or delete on ${table} for each row execute function feed_append(${args});`,
      );
    }
  }
}

// Frozen with this migration; a later migration adds triggers for later tables.
const TABLES = [
  'legions',
  'accounts',
  'devices',
  'device_accounts',
  'sshes',
  'habits',
  'dots',
  'colors',
  'pixels',
  'habit_pixels',
  'shapes',
  'habit_shapes',
  'empire_dates',
  'daemon_tokens',
] as const;

/** Column allow-lists: a daemon token travels as hash, device, expiry and revocation only. */
const COLUMNS: Partial<Record<(typeof TABLES)[number], string[]>> = {
  daemon_tokens: ['uuid', 'device_uuid', 'token_hash', 'expire_time', 'revoke_time'],
};
