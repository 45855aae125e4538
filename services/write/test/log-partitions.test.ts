import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureLogPartitions, insertLogBatch, pruneLogLines } from '../src/db/log-store.js';
import { initOrm } from '../src/db/orm.js';

const DAY_MS = 86_400_000;

/** Log retention by day partitions, on the run's database, far in the past where no other test writes. */
describe('log partitions', () => {
  let orm: MikroORM;
  beforeAll(async () => {
    orm = await initOrm(inject('databaseUrl'), { poolMax: 2 });
  });
  afterAll(() => orm?.close());

  const count = async (deviceUuid: string): Promise<number> =>
    Number(((await orm.em.fork().execute('select count(*) as n from log_entries where device_uuid = ?', [deviceUuid])) as { n: string }[])[0]!.n);
  const partitionOf = async (deviceUuid: string): Promise<string> =>
    ((await orm.em.fork().execute('select tableoid::regclass::text as p from log_entries where device_uuid = ? limit 1', [deviceUuid])) as { p: string }[])[0]!.p;

  it('puts a day\'s lines in that day\'s partition and drops the whole partition once it is past retention', async () => {
    const day = new Date(Math.floor((Date.now() - 400 * DAY_MS) / DAY_MS) * DAY_MS);
    const name = `log_entries_p${day.toISOString().slice(0, 10).replace(/-/g, '')}`;
    expect(await ensureLogPartitions(orm.em.fork(), day, 2)).toEqual([]);
    const old = randomUUID();
    const recent = randomUUID();
    await orm.em.fork().transactional((tx) => insertLogBatch(tx, [{ deviceUuid: old, lines: [{ line: 'a' }, { line: 'b' }], requestId: '' }], new Date(day.getTime() + 3_600_000)));
    await orm.em.fork().transactional((tx) => insertLogBatch(tx, [{ deviceUuid: recent, lines: [{ line: 'c' }], requestId: '' }], new Date(day.getTime() + 1.5 * DAY_MS)));
    expect(await partitionOf(old)).toBe(name);

    // Retention ending in the middle of the next day: the first day's partition goes whole, the next day's keeps its later lines.
    const dropped = await pruneLogLines(orm.em.fork(), new Date(day.getTime() + DAY_MS + 3_600_000));
    expect(dropped).toContain(name);
    expect(dropped).not.toContain(`log_entries_p${new Date(day.getTime() + DAY_MS).toISOString().slice(0, 10).replace(/-/g, '')}`);
    expect(await count(old)).toBe(0);
    expect(await count(recent)).toBe(1);
  });

  it('keeps lines for a day without a partition in the default one, and does not create that day over them', async () => {
    const day = new Date(Math.floor((Date.now() - 500 * DAY_MS) / DAY_MS) * DAY_MS);
    const device = randomUUID();
    await orm.em.fork().transactional((tx) => insertLogBatch(tx, [{ deviceUuid: device, lines: [{ line: 'early' }], requestId: '' }], new Date(day.getTime() + 60_000)));
    expect(await partitionOf(device)).toBe('log_entries_default');
    const name = `log_entries_p${day.toISOString().slice(0, 10).replace(/-/g, '')}`;
    expect(await ensureLogPartitions(orm.em.fork(), day, 1)).toEqual([name]);
    await pruneLogLines(orm.em.fork(), new Date(day.getTime() + DAY_MS));
    expect(await count(device)).toBe(0);
  });
});
