import { createHash } from 'node:crypto';
import { IsolationLevel } from '@mikro-orm/core';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildExport, GLOBAL_SCOPE, SOURCE_TABLES, sourceTableDdl, sqlValue } from '@titanbot/service-kit/daemon-database';
import Database from 'better-sqlite3';
import { createDelta } from 'fossil-delta';
import { Habit } from '../domain/habit.js';
import { listValues } from './habit-lists.js';
import type { Em } from './orm.js';

/** The habits rollout `rolloutUuid` changes as its candidate rows leave them (undefined: deleted), by habit uuid. */
export async function candidateHabits(em: Em, rolloutUuid: string): Promise<Map<string, Habit | undefined>> {
  const rows: (Record<string, unknown> & { habit_uuid: string; deleted: boolean })[] = await em.execute(
    `select habit_uuid, deleted, account_logical_id as "accountLogicalId", priority, trigger_shell as "triggerShell", log_template as "logTemplate",
            post_timeout_ms as "postTimeoutMs", comment, sequence, context, action, is_interruption as "isInterruption", is_active as "isActive",
            updated_at as "updatedAt", version
       from rollout_habits where rollout_uuid = ?`,
    [rolloutUuid],
  );
  const { pixels, shapes } = await listValues(em, { rolloutUuid });
  return new Map(
    rows.map(({ habit_uuid: uuid, deleted, ...fields }) => [
      uuid,
      deleted ? undefined : Object.assign(new Habit(), fields, { uuid, updatedAt: new Date(String(fields['updatedAt'])), pixels: pixels.get(uuid) ?? [], shapes: shapes.get(uuid) ?? [] }),
    ]),
  );
}

/** Every scope key replicas have reported a device syncing, ascending. */
export async function reportedScopes(em: Em): Promise<number[]> {
  const rows: { scope_key: string }[] = await em.execute('select distinct scope_key from device_statuses order by scope_key');
  return rows.map((r) => Number(r.scope_key));
}

/** What one scope's daemon database becomes with a rollout. */
export interface ScopeFiles {
  reportedDevices: number;
  stableBytes: number;
  stableSha256: string;
  candidateBytes: number;
  candidateSha256: string;
  deltaBytes: number;
}

/**
 * Builds scope `scopeKey`'s daemon database as it is and as rollout `rolloutUuid` would leave it,
 * as replicas build them (service-kit/daemon-database.ts), from the rows of PostgreSQL the scope's
 * files are made of, copied in their feed form (to_jsonb) into an in-memory SQLite, in one
 * REPEATABLE READ snapshot; then the Fossil delta between the two, as a replica makes it.
 */
export async function scopeFiles(em: Em, rolloutUuid: string, scopeKey: number): Promise<ScopeFiles> {
  const accountLogicalId = scopeKey === GLOBAL_SCOPE ? null : scopeKey;
  const db = new Database(':memory:');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-preview-'));
  try {
    for (const [name, t] of Object.entries(SOURCE_TABLES)) db.exec(sourceTableDdl(name, t));
    let reportedDevices = 0;
    await em.transactional(
      async (tx) => {
        const copy = async (table: keyof typeof SOURCE_TABLES, where: string, params: unknown[]): Promise<void> => {
          const docs: { doc: Record<string, unknown> }[] = await tx.execute(`select to_jsonb(t) as doc from ${table} t where ${where}`, params);
          const columns = SOURCE_TABLES[table].columns;
          const insert = db.prepare(`insert into ${table} (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})`);
          for (const { doc } of docs) insert.run(...columns.map((c) => sqlValue(doc[c])));
        };
        const inScope = 'account_logical_id is null or account_logical_id = ?';
        const habits = `select uuid from habits where ${inScope}`;
        await copy('habits', inScope, [accountLogicalId]);
        await copy('habit_pixels', `habit_uuid in (${habits})`, [accountLogicalId]);
        await copy('habit_shapes', `habit_uuid in (${habits})`, [accountLogicalId]);
        await copy('rollout_habits', 'rollout_uuid = ?', [rolloutUuid]);
        await copy('rollout_habit_pixels', 'rollout_uuid = ?', [rolloutUuid]);
        await copy('rollout_habit_shapes', 'rollout_uuid = ?', [rolloutUuid]);
        const linkedPixels = `select pixel_uuid from habit_pixels where habit_uuid in (${habits}) union select pixel_uuid from rollout_habit_pixels where rollout_uuid = ?`;
        await copy('pixels', `uuid in (${linkedPixels})`, [accountLogicalId, rolloutUuid]);
        await copy('dots', `uuid in (select dot_uuid from pixels where uuid in (${linkedPixels}))`, [accountLogicalId, rolloutUuid]);
        await copy('colors', `uuid in (select color_uuid from pixels where uuid in (${linkedPixels}))`, [accountLogicalId, rolloutUuid]);
        await copy('shapes', `uuid in (select shape_uuid from habit_shapes where habit_uuid in (${habits}) union select shape_uuid from rollout_habit_shapes where rollout_uuid = ?)`, [
          accountLogicalId,
          rolloutUuid,
        ]);
        const [count] = (await tx.execute('select count(*) as n from device_statuses where scope_key = ?', [scopeKey])) as { n: string }[];
        reportedDevices = Number(count!.n);
      },
      { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true },
    );
    const stableFile = path.join(dir, 'stable.sqlite');
    const candidateFile = path.join(dir, 'candidate.sqlite');
    buildExport(db, stableFile, scopeKey);
    buildExport(db, candidateFile, scopeKey, rolloutUuid);
    const [stable, candidate] = await Promise.all([readFile(stableFile), readFile(candidateFile)]);
    const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
    return {
      reportedDevices,
      stableBytes: stable.length,
      stableSha256: sha256(stable),
      candidateBytes: candidate.length,
      candidateSha256: sha256(candidate),
      deltaBytes: createDelta(stable, candidate).length,
    };
  } finally {
    db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

