import { credentials, Metadata } from '@grpc/grpc-js';
import { DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { unaryCall } from '@titanbot/service-kit/grpc-client';
import pg from 'pg';
import type { Benchmark } from './lib/context.js';
import { FIXTURE } from './lib/fixture.js';
import { cpuSeconds, rssBytes } from './lib/proc.js';
import { printJson, printTable } from './lib/report.js';
import { round } from './lib/stats.js';

/** Admin writes whose feed events the replica applies while its CPU is measured. */
const WRITES = 300;

/**
 * Benchmark: what the sync core costs a replica. (1) Snapshot rebuild: a new replica started
 * against the loaded fixture (10,000 habits of 3 pixels), from process start to SERVING: the
 * Snapshot stream into SQLite plus every scope digest computed from scratch. (2) Feed apply cost:
 * the replica's CPU per applied feed event over WRITES UpdateHabit calls on a global habit (each
 * changes every scope's content: the digest update and the listener pass are included).
 */
export const feedApply: Benchmark = {
  name: 'feed-apply',
  async run(ctx) {
    const started = performance.now();
    const replica = await ctx.system.startReplica();
    const rebuildMs = performance.now() - started;
    const rss = await rssBytes(replica.pid);

    const db = new pg.Client({ connectionString: ctx.system.databaseUrl });
    await db.connect();
    const head = async (): Promise<number> => Number((await db.query('select head_revision from feed_state')).rows[0].head_revision);
    const client = new DaemonServiceClient(replica.address, credentials.createInsecure());
    const md = new Metadata();
    md.set('x-api-key', ctx.fleet.tokens[0]!);
    const globalRevision = async (): Promise<number> => (await unaryCall(client, client.checkVersion, { knownVersion: '' }, md)).revision;
    try {
      const habit = await ctx.admin.createGlobalHabit('feed-apply');
      const before = await head();
      while ((await globalRevision()) < before) await new Promise((r) => setTimeout(r, 5));
      const cpuBefore = await cpuSeconds(replica.pid);
      for (let i = 0; i < WRITES; i++) await ctx.admin.touchHabit(habit, `feed-apply ${i} ${Date.now()}`);
      const after = await head();
      while ((await globalRevision()) < after) await new Promise((r) => setTimeout(r, 5));
      const cpu = (await cpuSeconds(replica.pid)) - cpuBefore;
      const events = after - before;
      const figures = {
        fixtureHabits: FIXTURE.habits,
        snapshotRebuildMs: round(rebuildMs, 0),
        replicaRssMiB: round(rss / 2 ** 20, 1),
        writes: WRITES,
        events,
        applyCpuUsPerEvent: round((cpu * 1e6) / events, 1),
      };
      printTable(`feed-apply: a new replica on the fixture (${FIXTURE.habits.toLocaleString('en-US')} habits), then ${WRITES} UpdateHabit calls on a global habit`, [
        { figure: 'snapshot rebuild (process start to SERVING), ms', value: figures.snapshotRebuildMs },
        { figure: 'replica RSS after the rebuild, MiB', value: figures.replicaRssMiB },
        { figure: 'feed events applied', value: events },
        { figure: 'replica CPU per applied event, µs', value: figures.applyCpuUsPerEvent },
      ]);
      printJson('feed-apply', figures);
    } finally {
      client.close();
      await db.end();
    }
  },
};
