import type { DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import type { Em } from './orm.js';

/** Every sealed column: its table, primary key and authenticated context (db/entities.ts). */
export const SEALED_COLUMNS = [
  { table: 'accounts', key: 'uuid', column: 'google_password', context: 'accounts.google_password' },
  { table: 'sshes', key: 'device_uuid', column: 'private_key', context: 'sshes.private_key' },
] as const;

export type SealedColumn = (typeof SEALED_COLUMNS)[number];

/**
 * Re-seals up to `limit` values of `c` that are not sealed under the keyring's current key, in the
 * caller's transaction; returns how many. Throws UnknownDataKeyError for a value under a key this
 * process does not hold.
 */
export async function resealBatch(em: Em, keyring: DataKeyring, c: SealedColumn, limit: number): Promise<number> {
  const rows: { id: string; value: string }[] = await em.execute(
    `select ${c.key} as id, ${c.column} as value from ${c.table} where ${c.column} not like ? order by ${c.key} limit ?`,
    [keyring.currentPattern(), limit],
  );
  for (const row of rows) {
    await em.execute(`update ${c.table} set ${c.column} = ? where ${c.key} = ?`, [keyring.seal(keyring.open(row.value, c.context), c.context), row.id]);
  }
  return rows.length;
}
