import { Migration } from '@mikro-orm/migrations';

const HABIT_COLUMNS = `
  account_logical_id integer,
  priority integer,
  trigger_shell text,
  log_template text,
  post_timeout_ms integer,
  comment text,
  sequence integer,
  context text,
  action text,
  is_interruption boolean not null,
  is_active boolean not null,
  updated_at timestamptz not null,
  version integer not null`;

/**
 * Staged rollouts (docs/decisions.md "Staged rollouts"): `rollouts` (the aggregate: its change set
 * as given, steps, state) and, while one has not ended, its candidate rows: each changed habit as
 * it will be (`rollout_habits`, `deleted` for a delete) with its pixel and shape links. All four
 * are on the change feed, so replicas can build a cohort's candidate content; the candidate rows
 * are deleted when the rollout ends. Pixels and shapes a candidate links stay referenced (the
 * orphan sweeps of db/habit-lists.ts look at these links too). `rollout_versions`: the candidate
 * version of each scope as replicas report it (like `scope_versions`, off the feed), for the
 * rollout's fleet figures.
 */
export class MigrationRollouts extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table rollouts (
  uuid uuid primary key,
  description text not null,
  state text not null check (state in ('created', 'running', 'paused', 'completed', 'aborted')),
  account_logical_id integer,
  changes jsonb not null,
  habit_uuids jsonb not null,
  steps jsonb not null,
  step_times jsonb not null,
  current_step integer not null,
  gates jsonb,
  state_reason text not null default '',
  create_time timestamptz not null,
  update_time timestamptz not null,
  version integer not null default 1
);`);
    this.addSql(`create index rollouts_open_idx on rollouts (state) where state in ('created', 'running', 'paused');`);
    this.addSql(`
create table rollout_habits (
  rollout_uuid uuid not null references rollouts (uuid) on delete cascade,
  habit_uuid uuid not null,
  deleted boolean not null,${HABIT_COLUMNS},
  primary key (rollout_uuid, habit_uuid)
);`);
    this.addSql('create index rollout_habits_habit_idx on rollout_habits (habit_uuid);');
    for (const [table, column, parent] of [
      ['rollout_habit_pixels', 'pixel_uuid', 'pixels'],
      ['rollout_habit_shapes', 'shape_uuid', 'shapes'],
    ] as const) {
      this.addSql(`
create table ${table} (
  rollout_uuid uuid not null,
  habit_uuid uuid not null,
  ${column} uuid not null references ${parent} (uuid),
  position integer not null,
  primary key (rollout_uuid, habit_uuid, ${column}),
  foreign key (rollout_uuid, habit_uuid) references rollout_habits (rollout_uuid, habit_uuid) on delete cascade
);`);
      this.addSql(`create index ${table}_ref_idx on ${table} (${column});`);
    }
    this.addSql(`
create table rollout_versions (
  rollout_uuid uuid not null references rollouts (uuid) on delete cascade,
  scope_key bigint not null,
  version text not null,
  primary key (rollout_uuid, scope_key)
);`);
    this.addSql(
      `create trigger rollouts_feed after insert or update or delete on rollouts for each row execute function feed_append('uuid', 'state', 'account_logical_id', 'steps', 'current_step');`,
    );
    for (const table of ['rollout_habits', 'rollout_habit_pixels', 'rollout_habit_shapes']) {
      this.addSql(`create trigger ${table}_feed after insert or update or delete on ${table} for each row execute function feed_append();`);
    }
  }
}
