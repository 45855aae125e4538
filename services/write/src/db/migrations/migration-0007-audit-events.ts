import { Migration } from '@mikro-orm/migrations';

/**
 * The audit trail: who called which state-changing admin method on what, with what outcome. Not
 * on the change feed (no trigger): audit rows never reach a replica.
 */
export class MigrationAuditEvents extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
create table audit_events (
  id bigserial primary key,
  event_time timestamptz not null,
  actor_subject text not null,
  actor_client_id text not null,
  method text not null,
  resource text not null,
  request_id text not null,
  code smallint not null
);`);
    this.addSql('create index audit_events_time_idx on audit_events (event_time, id);');
  }
}
