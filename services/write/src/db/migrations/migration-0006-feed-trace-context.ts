import { Migration } from '@mikro-orm/migrations';

/**
 * Each feed event carries the W3C `traceparent` of the call that wrote it, when tracing is on
 * (the write transaction sets `titanbot.traceparent` for itself; unset, the column stays null),
 * so a replica's apply of the change continues the admin call's trace. `feed_append` is restated
 * whole: `create or replace` needs the complete body.
 */
export class MigrationFeedTraceContext extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table feed_events add column traceparent text;');
    this.addSql(`
create or replace function feed_append() returns trigger language plpgsql as $fn$
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
  insert into feed_events (revision, table_name, operation, row, txid, traceparent)
    values (rev, tg_table_name, case when tg_op = 'DELETE' then 'delete' else 'upsert' end, doc, pg_current_xact_id(),
            nullif(current_setting('titanbot.traceparent', true), ''));
  perform pg_notify('titanbot_feed', '');
  return null;
end
$fn$;
`);
  }
}
