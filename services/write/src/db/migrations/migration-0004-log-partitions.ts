import { Migration } from '@mikro-orm/migrations';

/**
 * Daemon logs leave the write path of the domain: `log_entries` becomes a table partitioned by
 * day of `receive_time` (retention drops whole partitions instead of deleting rows), with a default
 * partition for lines whose day has no partition yet, and `log_requests` keeps each IngestLogs
 * request_id with its answer (AIP-155), so batches written outside the global write lock are still
 * stored once. Existing lines move into the default partition; housekeeping creates the day
 * partitions from now on. Ids keep their sequence.
 */
export class MigrationLogPartitions extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table log_entries rename to log_entries_unpartitioned;');
    this.addSql('alter sequence log_entries_id_seq owned by none;');
    this.addSql(`
create table log_entries (
  id bigint not null default nextval('log_entries_id_seq'),
  device_uuid uuid not null,
  line text not null,
  log_time timestamptz not null,
  receive_time timestamptz not null default now(),
  primary key (id, receive_time)
) partition by range (receive_time);`);
    this.addSql('create table log_entries_default partition of log_entries default;');
    this.addSql('insert into log_entries select id, device_uuid, line, log_time, receive_time from log_entries_unpartitioned;');
    this.addSql('drop table log_entries_unpartitioned;');
    this.addSql('alter sequence log_entries_id_seq owned by log_entries.id;');
    this.addSql('create index log_entries_log_time_idx on log_entries (log_time, id);');
    this.addSql('create index log_entries_device_idx on log_entries (device_uuid, log_time, id);');
    this.addSql(`
create table log_requests (
  request_id uuid primary key,
  accepted_count integer not null,
  receive_time timestamptz not null
);`);
    this.addSql('create index log_requests_receive_time_idx on log_requests (receive_time);');
  }
}
