import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '@titanbot/service-kit/free-port';
import type { Benchmark, BenchContext } from './lib/context.js';
import { cpuSeconds, rssBytes } from './lib/proc.js';
import { endedBy } from './lib/system.js';
import { memoryLimitFigures } from './lib/memory-limit.js';
import { printJson, printTable, type Row } from './lib/report.js';
import { percentile, round } from './lib/stats.js';
import type { HerdDaemonsConfig } from './load/herd-daemons.js';
import { forkLoad, nextMessage, scrape, stopLoad } from './watch-fanout.js';

const CONNECTIONS = 100;
const SYNCS = 20;
const MiB = 1024 * 1024;
const TARGET_PEAK_RSS_MIB = 512;

interface HerdResult {
  type: 'result';
  done: (number | null)[];
  syncsDone: (number | null)[];
  attempts: number;
  refused: number;
  errors: number;
  gaveUp: number;
}

/** The runs, side by side: without admission control, then with the default at two herd sizes. */
const RUNS = [
  { name: 'no admission control', daemons: 10_000, env: { DOWNLOADS_MEMORY_BUDGET: '1000GiB' } },
  { name: 'admission control (default)', daemons: 10_000, env: {} },
  { name: 'admission control (default)', daemons: 20_000, env: {} },
] as const;

/**
 * Benchmark: a herd of daemons that all need the largest scope's whole file at once (an export
 * format change, a new replica behind a balancer, a daemon whose held file is no longer kept).
 * Per run: the replica's peak RSS (sampled every 50 ms), time from "go" until each daemon holds a
 * verified file (p50, p99, max), downloads refused (DOWNLOADS_BUSY) and retried, and daemons that
 * gave up; 20 real DaemonSync clients take part, retrying as they ship.
 */
export const herd: Benchmark = {
  name: 'herd',
  async run(ctx: BenchContext) {
    const rows: Row[] = [];
    const figures: Record<string, unknown>[] = [];
    for (const run of RUNS) {
      const metricsAddress = `127.0.0.1:${await freePort()}`;
      const replica = await ctx.system.startReplica({ METRICS_ADDR: metricsAddress, ...run.env });
      const dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-bench-herd-'));
      const config: HerdDaemonsConfig = { address: replica.address, tokens: ctx.fleet.tokens, daemons: run.daemons, connections: CONNECTIONS, syncs: SYNCS, logicalId: ctx.fleet.logicalId, dir };
      const load = forkLoad('herd-daemons.js', [JSON.stringify(config)]);
      try {
        await nextMessage(load, 'ready', 120_000);
        const rssBefore = await rssBytes(replica.pid);
        let peakRss = rssBefore;
        const sampler = setInterval(() => void rssBytes(replica.pid).then((b) => (peakRss = Math.max(peakRss, b)), () => undefined), 50);
        const cpu0 = await cpuSeconds(replica.pid);
        const result = nextMessage<HerdResult>(load, 'result', 600_000);
        const t0 = performance.timeOrigin + performance.now();
        load.send({ type: 'go' });
        const r = await result;
        clearInterval(sampler);
        // A replica killed on the way (the OOM killer, under BENCH_REPLICA_MEMORY_LIMIT) has no CPU or metrics left to read.
        const ended = endedBy(replica);
        const cpu = ended ? Number.NaN : (await cpuSeconds(replica.pid)) - cpu0;
        const busy = ended ? Number.NaN : await scrape(metricsAddress, 'titanbot_export_downloads_busy_total');
        const times = r.done.filter((t): t is number => t !== null).map((t) => t - t0);
        const syncTimes = r.syncsDone.filter((t): t is number => t !== null).map((t) => t - t0);
        const figure = {
          run: run.name,
          daemons: run.daemons,
          holding: times.length,
          syncsHolding: syncTimes.length,
          gaveUp: r.gaveUp,
          p50Ms: round(percentile(times, 50)),
          p99Ms: round(percentile(times, 99)),
          maxMs: round(Math.max(...times)),
          syncsMaxMs: round(Math.max(...syncTimes)),
          refused: r.refused,
          refusedByReplica: busy,
          attempts: r.attempts,
          errors: r.errors,
          replicaCpuSeconds: round(cpu, 1),
          replicaRssBeforeMiB: round(rssBefore / MiB, 1),
          replicaPeakRssMiB: round(peakRss / MiB, 1),
          replicaEnded: ended ?? null,
          ...(await memoryLimitFigures(replica.memoryLimit)),
        };
        figures.push(figure);
        rows.push({
          run: run.name,
          daemons: `${run.daemons} + ${SYNCS} DaemonSync`,
          holding: `${times.length} + ${syncTimes.length}`,
          'gave up': r.gaveUp,
          'p50 / p99 / max s': `${round(figure.p50Ms / 1000, 1)} / ${round(figure.p99Ms / 1000, 1)} / ${round(figure.maxMs / 1000, 1)}`,
          'DaemonSync max s': round(figure.syncsMaxMs / 1000, 1),
          'refused (retried)': r.refused,
          errors: r.errors,
          'replica CPU s': figure.replicaCpuSeconds,
          'replica RSS MiB before / peak': `${figure.replicaRssBeforeMiB} / ${figure.replicaPeakRssMiB}`,
          'replica ended': ended ?? '',
        });
      } finally {
        await stopLoad(load);
        await replica.stop();
        await rm(dir, { recursive: true, force: true });
      }
    }
    printTable(`herd: every daemon needs scope ${ctx.fleet.logicalId}'s whole file at once (${CONNECTIONS} connections; refused downloads retried after their RetryInfo delay); time from "go"`, rows);
    const admitted = figures.slice(1) as { replicaPeakRssMiB: number; gaveUp: number }[];
    printJson('herd', {
      runs: figures,
      targets: { peakRssMiB: `<= ${TARGET_PEAK_RSS_MIB} with admission control`, gaveUp: '0 with admission control' },
      met: { peakRss: admitted.every((f) => f.replicaPeakRssMiB <= TARGET_PEAK_RSS_MIB), noneGaveUp: admitted.every((f) => f.gaveUp === 0) },
    });
  },
};
