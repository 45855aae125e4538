import { Migration } from '@mikro-orm/migrations';

/**
 * A device's status history (`device_status_changes`): one row each time its stored status
 * (`device_statuses`) is inserted, or updated to another version, install failure or scope, added
 * by triggers on that table so that no writer can miss one; an update of contact alone adds
 * nothing (the trigger's WHEN is checked without calling it). Pruned after
 * STATUS_HISTORY_RETENTION by housekeeping.
 */
export class MigrationDeviceStatusChanges extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table device_status_changes (
  id bigint generated always as identity primary key,
  device_uuid uuid not null references devices (uuid) on delete cascade,
  scope_key bigint not null,
  held_version text not null,
  held_sha256 text not null,
  failure smallint not null,
  failure_message text not null,
  change_time timestamptz not null,
  replica text not null
);`);
    this.addSql('create index device_status_changes_device_idx on device_status_changes (device_uuid, id desc);');
    this.addSql('create index device_status_changes_time_idx on device_status_changes (change_time);');
    this.addSql(`
create function record_device_status_change() returns trigger language plpgsql as $$
begin
  insert into device_status_changes (device_uuid, scope_key, held_version, held_sha256, failure, failure_message, change_time, replica)
  values (new.device_uuid, new.scope_key, new.held_version, new.held_sha256, new.failure, new.failure_message, new.last_contact_time, new.replica);
  return null;
end $$;`);
    this.addSql('create trigger device_status_inserted after insert on device_statuses for each row execute function record_device_status_change();');
    this.addSql(`
create trigger device_status_changed after update on device_statuses for each row
  when ((old.held_version, old.failure, old.scope_key) is distinct from (new.held_version, new.failure, new.scope_key))
  execute function record_device_status_change();`);
  }
}
