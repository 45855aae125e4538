import { Migration } from '@mikro-orm/migrations';

/**
 * Tokens of the original system, imported by operators: a `kind` on daemon tokens ('legacy'
 * tokens are accepted on the legacy HTTP API only) and an optional expiry (the original's tokens
 * had none). Existing rows are daemon tokens with their expiry. The table stays on the feed, so
 * imports and revocations reach every replica as daemon tokens do.
 */
export class MigrationLegacyTokens extends Migration {
  override async up(): Promise<void> {
    this.addSql("alter table daemon_tokens add column kind text not null default 'daemon' check (kind in ('daemon', 'legacy'));");
    this.addSql('alter table daemon_tokens alter column expire_time drop not null;');
    this.addSql("alter table daemon_tokens add constraint daemon_tokens_expiry_check check (kind = 'legacy' or expire_time is not null);");
    // The kind travels on the feed: replicas accept legacy tokens on the legacy API only.
    this.addSql('drop trigger daemon_tokens_feed on daemon_tokens;');
    this.addSql(
      `create trigger daemon_tokens_feed after insert or update or delete on daemon_tokens for each row execute function feed_append('uuid', 'device_uuid', 'token_hash', 'prefix', 'create_time', 'expire_time', 'revoke_time', 'kind');`,
    );
  }
}
