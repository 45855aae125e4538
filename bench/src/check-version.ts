import type { Benchmark, BenchContext } from './lib/context.js';
import { runCheckVersionLoad, startPeer, type LoadConfig, type LoadResult } from './lib/peer.js';
import { printJson, printTable } from './lib/report.js';
import { round } from './lib/stats.js';
import type { ServiceProcess } from './lib/system.js';

/** The load shape: 64 calls in flight over 8 channels (8 per channel). */
export const CHECK_VERSION_LOAD = { channels: 8, concurrency: 64, warmupMs: 1_000, durationMs: 5_000 } as const;

export interface TargetFigures {
  target: string;
  load: LoadResult;
  /** CPU µs per completed call of the serving side (for the naive peer: its process plus PostgreSQL). */
  cpuUsPerCall: number;
  /** The load generator's own CPU µs per call. */
  generatorCpuUsPerCall: number;
}

/**
 * Runs the load generator against `targets` and measures the serving pids' CPU over its window.
 * Every target gets the same requests with the same x-api-key metadata (the peers ignore it), so
 * the transport work of reading the headers is the same for all; `tokens` (default the fleet's)
 * are the daemons calling, one per channel.
 */
export async function measureTarget(
  name: string,
  ctx: BenchContext,
  targets: string[],
  pids: number[],
  options: { includePostgres?: boolean; auth?: boolean; tokens?: string[] } = {},
): Promise<TargetFigures> {
  const config: LoadConfig = { ...CHECK_VERSION_LOAD, targets, tokens: options.auth === false ? [] : (options.tokens ?? ctx.fleet.tokens), logicalId: ctx.fleet.logicalId };
  const { load, cpuSeconds } = await runCheckVersionLoad(config, pids, options.includePostgres ?? false);
  if (load.errors) process.stderr.write(`check-version: ${name}: ${load.errors} errors, first: ${load.firstError}\n`);
  const calls = Math.max(1, load.calls);
  return { target: name, load, cpuUsPerCall: (cpuSeconds * 1e6) / calls, generatorCpuUsPerCall: (load.generatorCpuSeconds * 1e6) / calls };
}

/**
 * Benchmark 1: CheckVersion at 64 concurrent calls over 8 channels against a read replica, with
 * the empty unary RPC (ceiling) and the naive `select max(updated_at)` peer as references, all
 * measured in this run with the load generator in its own process. On 2 cores the generator
 * caps rps near the same figure for every fast server, so the comparison is CPU per call.
 */
export const checkVersion: Benchmark = {
  name: 'check-version',
  async run(ctx) {
    const started: ServiceProcess[] = [];
    try {
      const replica = await ctx.system.startReplica();
      started.push(replica);
      const empty = await startPeer('bench/dist/peers/empty-server.js');
      started.push(empty);
      const naive = await startPeer('bench/dist/peers/naive-server.js', { DATABASE_URL: ctx.system.databaseUrl });
      started.push(naive);

      const e = await measureTarget('empty RPC (ceiling)', ctx, [empty.address], [empty.pid]);
      const r = await measureTarget('read service', ctx, [replica.address], [replica.pid]);
      const n = await measureTarget('naive max(updated_at) + PostgreSQL', ctx, [naive.address], [naive.pid], { includePostgres: true });

      const rows = [e, r, n].map((f) => ({
        target: f.target,
        rps: Math.round(f.load.rps),
        'p50 ms': round(f.load.p50Ms, 3),
        'p99 ms': round(f.load.p99Ms, 3),
        'CPU µs/call': round(f.cpuUsPerCall, 1),
        'ratio to empty': round(f.cpuUsPerCall / e.cpuUsPerCall, 2),
        'naive/this': round(n.cpuUsPerCall / f.cpuUsPerCall, 2),
        'loadgen µs/call': round(f.generatorCpuUsPerCall, 1),
        errors: f.load.errors,
      }));
      printTable('check-version: 64 concurrent CheckVersion calls over 8 channels, 1 s warm-up + 5 s measured each', rows);
      const readToEmpty = r.cpuUsPerCall / e.cpuUsPerCall;
      const naiveToRead = n.cpuUsPerCall / r.cpuUsPerCall;
      printJson('check-version', {
        channels: CHECK_VERSION_LOAD.channels,
        concurrency: CHECK_VERSION_LOAD.concurrency,
        seconds: CHECK_VERSION_LOAD.durationMs / 1000,
        readRps: Math.round(r.load.rps),
        readP50Ms: round(r.load.p50Ms, 3),
        readP99Ms: round(r.load.p99Ms, 3),
        readCpuUsPerCall: round(r.cpuUsPerCall, 1),
        emptyRps: Math.round(e.load.rps),
        emptyP50Ms: round(e.load.p50Ms, 3),
        emptyP99Ms: round(e.load.p99Ms, 3),
        emptyCpuUsPerCall: round(e.cpuUsPerCall, 1),
        naiveRps: Math.round(n.load.rps),
        naiveP50Ms: round(n.load.p50Ms, 3),
        naiveP99Ms: round(n.load.p99Ms, 3),
        naiveCpuUsPerCall: round(n.cpuUsPerCall, 1),
        readToEmptyCpuRatio: round(readToEmpty, 2),
        naiveToReadCpuRatio: round(naiveToRead, 2),
        loadgenCpuUsPerCall: round(r.generatorCpuUsPerCall, 1),
        errors: e.load.errors + r.load.errors + n.load.errors,
        targetWithin1_2xOfEmptyMet: readToEmpty <= 1.2,
        targetAtMostEighthOfNaiveMet: naiveToRead >= 8,
      });
    } finally {
      // Idle processes would only add noise to the benchmarks that follow.
      for (const p of started.reverse()) await p.stop();
    }
  },
};
