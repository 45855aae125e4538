import { Migration } from '@mikro-orm/migrations';

/**
 * Each feed event records the id of the transaction that wrote it (`pg_current_xact_id()`), so
 * Subscribe can tell readers where a transaction ends (ChangeEvent.transaction_continues). The
 * write lock and the counter row make a transaction's revisions consecutive. Events written before
 * this migration have no id and count as transactions of their own.
 */
export class MigrationFeedTransactions extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table feed_events add column txid xid8;');
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
  insert into feed_events (revision, table_name, operation, row, txid)
    values (rev, tg_table_name, case when tg_op = 'DELETE' then 'delete' else 'upsert' end, doc, pg_current_xact_id());
  perform pg_notify('titanbot_feed', '');
  return null;
end
$fn$;
`);
  }
}
