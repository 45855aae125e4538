import { Migration } from '@mikro-orm/migrations';

/**
 * The fleet view: what each daemon holds as its replicas report it (`device_statuses`, one row per
 * device, last write wins by last_contact_time) and the version each scope stands at
 * (`scope_versions`, by scope key: the logical id, or 2^32 for the global scope). Neither is on
 * the change feed; both are written outside the global write lock.
 */
export class MigrationFleetStatus extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table device_statuses (
  device_uuid uuid primary key references devices (uuid) on delete cascade,
  scope_key bigint not null,
  held_version text not null,
  held_sha256 text not null,
  failure smallint not null,
  failure_message text not null,
  last_contact_time timestamptz not null,
  replica text not null
);`);
    this.addSql('create index device_statuses_scope_idx on device_statuses (scope_key);');
    this.addSql(`
create table scope_versions (
  scope_key bigint primary key,
  version text not null,
  since timestamptz not null
);`);
  }
}
