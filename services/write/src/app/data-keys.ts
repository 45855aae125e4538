import type { MikroORM } from '@mikro-orm/postgresql';
import type { DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import { resealBatch, SEALED_COLUMNS } from '../db/sealed-columns.js';
import { inWriteTransaction } from './write-transaction.js';

/**
 * Re-seals every secret column value that is not sealed under the keyring's current key,
 * `batchSize` rows per transaction (each under the write lock, so admin writes interleave and
 * none is overwritten). Each re-sealed row goes out on the change feed. Returns the number of
 * values re-sealed. Throws UnknownDataKeyError for a value under a key this process does not
 * hold (refresh the keyring and call again).
 */
export async function resealSecrets(orm: MikroORM, keyring: DataKeyring, batchSize: number): Promise<number> {
  let total = 0;
  for (const column of SEALED_COLUMNS) {
    for (;;) {
      const count = await inWriteTransaction(orm.em.fork(), (tx) => resealBatch(tx, keyring, column, batchSize));
      total += count;
      if (count < batchSize) break;
    }
  }
  return total;
}
