import { Migration } from '@mikro-orm/migrations';

/**
 * Daemon tokens also carry `prefix` and `create_time` on the feed, so a read replica can tell a
 * daemon its token's lifetime (DaemonService.GetToken) and the daemon can rotate at 80 % of it.
 * Both are public: the prefix is what ListDaemonTokens shows; the secret stays a hash.
 */
export class MigrationTokenLifetimeOnFeed extends Migration {
  override async up(): Promise<void> {
    this.addSql('drop trigger daemon_tokens_feed on daemon_tokens;');
    this.addSql(
      `create trigger daemon_tokens_feed after insert or update or delete on daemon_tokens for each row execute function feed_append('uuid', 'device_uuid', 'token_hash', 'prefix', 'create_time', 'expire_time', 'revoke_time');`,
    );
  }
}
