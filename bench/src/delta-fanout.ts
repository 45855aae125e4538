import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Benchmark, BenchContext } from './lib/context.js';
import { cpuSeconds, rssBytes } from './lib/proc.js';
import { endedBy } from './lib/system.js';
import { memoryLimitFigures } from './lib/memory-limit.js';
import { printJson, printTable, type Row } from './lib/report.js';
import { percentile, round } from './lib/stats.js';
import { freePort } from '@titanbot/service-kit/free-port';
import type { DaemonSyncsConfig } from './load/daemon-syncs.js';
import type { DeltaDaemonsConfig, DeltaDaemonsResult } from './load/delta-daemons.js';
import { forkLoad, nextMessage, stopLoad } from './watch-fanout.js';

const DAEMONS = 10_000;
const CONNECTIONS = 100;
const SYNCS = 20;
const TARGETS = { oneHabitBytesPerDaemon: 2048, oneHabitAllHoldMs: 5_000 } as const;
const MiB = 1024 * 1024;

interface Ready {
  type: 'ready';
  errors?: number;
}
interface SyncsResult {
  type: 'result';
  installed: (number | null)[];
  errors: number;
}

/** One change to the largest scope, made the way the scenario says; resolves once committed. */
interface Scenario {
  name: string;
  change(ctx: BenchContext, db: pg.Client, round: number): Promise<unknown>;
}

/** Changes `count` global habits (every scope exports them) in one transaction, so daemons see one new version. */
const changeGlobalHabits = (count: number) => (_ctx: BenchContext, db: pg.Client, round: number) =>
  db.query(
    `update habits set comment = coalesce(comment, '') || $2, updated_at = now()
     where uuid in (select uuid from habits where account_logical_id is null order by uuid limit $1)`,
    [count, ` r${round}`],
  );

/** Sum of one label's value of a Prometheus counter at `metricsAddress`. */
async function scrapeLabelled(metricsAddress: string, name: string, label: string): Promise<number> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  const match = new RegExp(`^${name}\\{[^}]*${label}[^}]*\\} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

/**
 * Benchmark: what one change costs the fleet in bytes and time, with delta downloads and with
 * whole files, side by side. 10,000 simulated daemons (one load process, 100 connections) watch
 * the largest scope holding its current file, and 20 real DaemonSync clients (another process)
 * install it to disk. Per scenario (one global habit changed; 1 % and 10 % of the habits changed
 * in one transaction): bytes per daemon and in all, time from just before the change until each
 * daemon holds the new file (verified), the replica's CPU and peak RSS, and how many downloads
 * had to be whole files because the replica no longer kept what the daemon held.
 */
export const deltaFanout: Benchmark = {
  name: 'delta-fanout',
  async run(ctx: BenchContext) {
    const habit = await ctx.admin.createGlobalHabit('bench delta-fanout');
    const scenarios: Scenario[] = [
      { name: 'one habit', change: (c, _db, r) => c.admin.touchHabit(habit, `delta-fanout ${r}`) },
      { name: '1 % of habits (100)', change: changeGlobalHabits(100) },
      { name: '10 % of habits (1,000)', change: changeGlobalHabits(1_000) },
    ];
    const db = new pg.Client({ connectionString: ctx.system.databaseUrl });
    await db.connect();
    const rows: Row[] = [];
    const figures: Record<string, unknown> = {};
    let round_ = 0;
    try {
      for (const mode of ['delta', 'full'] as const) {
        const metricsAddress = `127.0.0.1:${await freePort()}`;
        const replica = await ctx.system.startReplica({ METRICS_ADDR: metricsAddress, DELTA_MAX_RATIO: mode === 'delta' ? '0.5' : '0' });
        const dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-bench-syncs-'));
        const daemonsConfig: DeltaDaemonsConfig = { address: replica.address, tokens: ctx.fleet.tokens, daemons: DAEMONS, connections: CONNECTIONS, logicalId: ctx.fleet.logicalId, mayDelta: mode === 'delta' };
        const syncsConfig: DaemonSyncsConfig = { address: replica.address, tokens: ctx.fleet.tokens, count: SYNCS, logicalId: ctx.fleet.logicalId, dir };
        const daemons = forkLoad('delta-daemons.js', [JSON.stringify(daemonsConfig)]);
        const syncs = forkLoad('daemon-syncs.js', [JSON.stringify(syncsConfig)]);
        try {
          const ready = await nextMessage<Ready>(daemons, 'ready', 120_000);
          if (ready.errors) throw new Error(`${ready.errors} simulated daemons failed while opening`);
          await nextMessage<Ready>(syncs, 'ready', 120_000);
          for (const scenario of scenarios) {
            round_++;
            const daemonsResult = nextMessage<DeltaDaemonsResult>(daemons, 'result', 360_000);
            const syncsResult = nextMessage<SyncsResult>(syncs, 'result', 360_000);
            daemons.send({ type: 'go' });
            syncs.send({ type: 'go' });
            await new Promise((r) => setTimeout(r, 100)); // the 'go' is delivered before the change
            const baseMissing0 = await scrapeLabelled(metricsAddress, 'titanbot_export_downloads_total', 'kind="full_base_missing"');
            const cpu0 = await cpuSeconds(replica.pid);
            let peakRss = await rssBytes(replica.pid);
            const sampler = setInterval(() => void rssBytes(replica.pid).then((b) => (peakRss = Math.max(peakRss, b)), () => undefined), 50);
            const t0 = performance.timeOrigin + performance.now();
            await scenario.change(ctx, db, round_);
            const [d, s] = await Promise.all([daemonsResult, syncsResult]);
            clearInterval(sampler);
            // A replica killed on the way (the OOM killer, under BENCH_REPLICA_MEMORY_LIMIT) has no CPU or metrics left to read.
            const ended = endedBy(replica);
            const cpu = ended ? Number.NaN : (await cpuSeconds(replica.pid)) - cpu0;
            const baseMissing = ended ? Number.NaN : (await scrapeLabelled(metricsAddress, 'titanbot_export_downloads_total', 'kind="full_base_missing"')) - baseMissing0;
            const latencies = d.done.filter((t): t is number => t !== null).map((t) => t - t0);
            const syncLatencies = s.installed.filter((t): t is number => t !== null).map((t) => t - t0);
            const holding = latencies.length;
            const maxMs = holding === DAEMONS ? Math.max(...latencies) : Number.POSITIVE_INFINITY;
            const bytesPerDaemon = d.bytes / Math.max(1, holding);
            rows.push({
              downloads: mode,
              change: scenario.name,
              holding: `${holding}/${DAEMONS} + ${syncLatencies.length}/${SYNCS}`,
              'bytes/daemon': Math.round(bytesPerDaemon),
              'total MB': round(d.bytes / 1e6, 1),
              deltas: d.deltas,
              'p50 ms': round(percentile(latencies, 50)),
              'p99 ms': round(percentile(latencies, 99)),
              'max ms': round(maxMs),
              'DaemonSync p50/max ms': `${round(percentile(syncLatencies, 50))}/${round(Math.max(...syncLatencies))}`,
              'replica CPU s': round(cpu, 2),
              'replica peak RSS MiB': round(peakRss / MiB, 1),
              'full: base not kept': baseMissing,
              'refused (retried)': d.refused,
              errors: d.errors + s.errors,
              'replica ended': ended ?? '',
            });
            const key = `${mode}${scenario.name.startsWith('one') ? 'OneHabit' : scenario.name.startsWith('1 %') ? 'OnePercent' : 'TenPercent'}`;
            figures[key] = {
              holding,
              syncsHolding: syncLatencies.length,
              bytesPerDaemon: Math.round(bytesPerDaemon),
              totalBytes: d.bytes,
              deltas: d.deltas,
              p50Ms: round(percentile(latencies, 50)),
              p99Ms: round(percentile(latencies, 99)),
              maxMs: round(maxMs),
              syncsMaxMs: round(Math.max(...syncLatencies)),
              replicaCpuSeconds: round(cpu, 2),
              replicaPeakRssMiB: round(peakRss / MiB, 1),
              fullBecauseBaseNotKept: baseMissing,
              refused: d.refused,
              errors: d.errors + s.errors,
              replicaEnded: ended ?? null,
              ...(await memoryLimitFigures(replica.memoryLimit)),
            };
            if (ended) break;
            await new Promise((r) => setTimeout(r, 1_000));
          }
        } finally {
          await stopLoad(daemons);
          await stopLoad(syncs);
          await replica.stop();
          await rm(dir, { recursive: true, force: true });
        }
      }
    } finally {
      await db.end();
    }
    printTable(`delta-fanout: ${DAEMONS} simulated daemons (${CONNECTIONS} connections, verified in memory) + ${SYNCS} DaemonSync installing to disk, scope ${ctx.fleet.logicalId}; ms from just before the change until the daemon holds the new file`, rows);
    const one = figures['deltaOneHabit'] as { bytesPerDaemon: number; maxMs: number };
    printJson('delta-fanout', {
      daemons: DAEMONS,
      syncs: SYNCS,
      ...figures,
      targets: { oneHabitBytesPerDaemon: `<= ${TARGETS.oneHabitBytesPerDaemon}`, oneHabitAllHoldMs: `< ${TARGETS.oneHabitAllHoldMs}` },
      met: { oneHabitBytesPerDaemon: one.bytesPerDaemon <= TARGETS.oneHabitBytesPerDaemon, oneHabitAllHoldMs: one.maxMs < TARGETS.oneHabitAllHoldMs },
    });
  },
};
