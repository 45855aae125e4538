import type { Em } from './orm.js';

/** One round trip to PostgreSQL (`select 1`); rejects when it does not answer. */
export async function ping(em: Em): Promise<void> {
  await em.getConnection().execute('select 1');
}
