import pg from 'pg';
import type { Benchmark, BenchContext } from './lib/context.js';
import { cpuSeconds, measureCpu } from './lib/proc.js';
import { printJson, printTable, type Row } from './lib/report.js';
import { round } from './lib/stats.js';
import type { FeedFollowersConfig } from './load/feed-followers.js';
import { forkLoad, nextMessage, stopLoad } from './watch-fanout.js';

const FOLLOWER_COUNTS = [0, 1, 10, 50] as const;
const WRITES = 400;
const IN_FLIGHT = 4;
const HABITS = 20;

/**
 * Benchmark: what each subscribed replica costs the write service. For 0, 1, 10 and 50 feed
 * followers (Subscribe streams, each on its own connection, in a load process: the replica's
 * consumer without the SQLite work), 400 admin writes (UpdateHabit of global habits, 4 at a time);
 * per count: the write service's CPU and PostgreSQL's CPU per write (ms), and the time from the
 * last write's return until the slowest follower has it. The increase per follower is the feed's
 * cost of one more replica; from it, the replica count at which the feed would cost the write
 * service and PostgreSQL as much as the writes themselves (docs/decisions.md: when a relay tier is due).
 */
export const feedFanout: Benchmark = {
  name: 'feed-fanout',
  async run(ctx: BenchContext): Promise<void> {
    const habits: string[] = [];
    for (let i = 0; i < HABITS; i++) habits.push(await ctx.admin.createGlobalHabit(`bench feed-fanout ${i}`));
    const db = new pg.Client({ connectionString: ctx.system.databaseUrl });
    await db.connect();
    const head = async (): Promise<number> => Number((await db.query('select head_revision from feed_state')).rows[0].head_revision);
    const writes = async (label: string): Promise<void> => {
      let next = 0;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          for (let i = next++; i < WRITES; i = next++) await ctx.admin.touchHabit(habits[i % HABITS]!, `${label} ${i}`);
        }),
      );
    };
    // Warm-up: JIT and connections of the write service.
    await writes('warm-up');
    const rows: Row[] = [];
    const runs: { followers: number; writeCpuMsPerWrite: number; postgresCpuMsPerWrite: number; lastFollowerMs: number }[] = [];
    try {
      for (const followers of FOLLOWER_COUNTS) {
        const config: FeedFollowersConfig = { address: ctx.system.write.address, readerToken: ctx.system.readerToken, followers, afterRevision: await head() };
        const load = followers ? forkLoad('feed-followers.js', [JSON.stringify(config)]) : undefined;
        try {
          if (load) await nextMessage(load, 'ready', 60_000);
          const write0 = await cpuSeconds(ctx.system.write.pid);
          // Result: ms from the last write's return until the slowest follower has its revision.
          const { result: lastFollower, cpuSeconds: postgresCpu } = await measureCpu([], true, async () => {
            await writes(`fan-out ${followers}`);
            const writesDone = performance.timeOrigin + performance.now();
            if (!load) return 0;
            const reached = nextMessage<{ at: number }>(load, 'reached', 60_000);
            load.send({ type: 'wait', revision: await head() });
            return (await reached).at - writesDone;
          });
          const writeCpu = (await cpuSeconds(ctx.system.write.pid)) - write0;
          const run = { followers, writeCpuMsPerWrite: round((writeCpu * 1000) / WRITES, 3), postgresCpuMsPerWrite: round((postgresCpu * 1000) / WRITES, 3), lastFollowerMs: round(lastFollower) };
          runs.push(run);
          rows.push({ followers, 'write service CPU ms / write': run.writeCpuMsPerWrite, 'PostgreSQL CPU ms / write': run.postgresCpuMsPerWrite, 'slowest follower after the last write, ms': run.lastFollowerMs });
        } finally {
          if (load) await stopLoad(load);
        }
      }
    } finally {
      await db.end();
    }
    const base = runs[0]!;
    const most = runs[runs.length - 1]!;
    // Cost of one more replica per write (ms), fitted between no followers and the most.
    const perFollowerMs = (most.writeCpuMsPerWrite + most.postgresCpuMsPerWrite - base.writeCpuMsPerWrite - base.postgresCpuMsPerWrite) / most.followers;
    const ownMs = base.writeCpuMsPerWrite + base.postgresCpuMsPerWrite;
    const equalCostReplicas = perFollowerMs > 0 ? Math.round(ownMs / perFollowerMs) : Number.POSITIVE_INFINITY;
    printTable(`feed-fanout: ${WRITES} writes (${IN_FLIGHT} at a time) with N feed followers subscribed; CPU per committed write`, rows);
    printTable('feed-fanout: what one more replica costs', [
      { figure: 'CPU per write per replica, ms (write service + PostgreSQL)', value: round(perFollowerMs, 4) },
      { figure: 'CPU per write without replicas, ms', value: round(ownMs, 3) },
      { figure: 'replicas at which the feed costs as much as the writes', value: equalCostReplicas },
    ]);
    printJson('feed-fanout', { writes: WRITES, runs, perReplicaCpuMsPerWrite: round(perFollowerMs, 4), ownCpuMsPerWrite: round(ownMs, 3), equalCostReplicas });
  },
};
