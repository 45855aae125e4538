import type { MikroORM } from '@mikro-orm/postgresql';
import type { DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import { takeWriteLock } from '../db/write-lock.js';

/** Every sealed column: its table, primary key and authenticated context (db/entities.ts). */
const SEALED_COLUMNS = [
  { table: 'accounts', key: 'uuid', column: 'google_password', context: 'accounts.google_password' },
  { table: 'sshes', key: 'device_uuid', column: 'private_key', context: 'sshes.private_key' },
] as const;

/**
 * Re-seals every secret column value that is not sealed under the keyring's current key,
 * `batchSize` rows per transaction (each under the write lock, so admin writes interleave and
 * none is overwritten). Each re-sealed row goes out on the change feed. Returns the number of
 * values re-sealed. Throws UnknownDataKeyError for a value under a key this process does not
 * hold (refresh the keyring and call again).
 */
export async function resealSecrets(orm: MikroORM, keyring: DataKeyring, batchSize: number): Promise<number> {
  let total = 0;
  for (const { table, key, column, context } of SEALED_COLUMNS) {
    for (;;) {
      const count = await orm.em.fork().transactional(async (tx) => {
        await takeWriteLock(tx);
        const rows: { id: string; value: string }[] = await tx.execute(
          `select ${key} as id, ${column} as value from ${table} where ${column} not like ? order by ${key} limit ?`,
          [keyring.currentPattern(), batchSize],
        );
        for (const row of rows) {
          await tx.execute(`update ${table} set ${column} = ? where ${key} = ?`, [keyring.seal(keyring.open(row.value, context), context), row.id]);
        }
        return rows.length;
      });
      total += count;
      if (count < batchSize) break;
    }
  }
  return total;
}
