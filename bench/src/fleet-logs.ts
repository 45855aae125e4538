import { randomUUID } from 'node:crypto';
import { credentials, Metadata } from '@grpc/grpc-js';
import { CreateLegionRequest, LegionServiceClient } from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import { unaryCall } from '@titanbot/service-kit/grpc-client';
import type { Benchmark } from './lib/context.js';
import { printJson, printTable, type Row } from './lib/report.js';
import { percentile, round } from './lib/stats.js';
import { forkLoad, nextMessage, stopLoad } from './watch-fanout.js';

/**
 * Runs, each against one replica: the target rate (300 WriteLogs/s, from 200 and from 1,000
 * daemons on a timer) with the admin write latency it causes, then the closed loop (every daemon
 * sends again once acknowledged) for the most the system takes.
 */
const RUNS = [
  { daemons: 200, callsPerSecond: 300 },
  { daemons: 1_000, callsPerSecond: 300 },
  { daemons: 200, callsPerSecond: 0 },
  { daemons: 1_000, callsPerSecond: 0 },
] as const;
const LINES_PER_BATCH = 20;
const WARMUP_MS = 3_000;
const WINDOW_MS = 10_000;
/** Admin writes timed on their own, one after another. */
const ADMIN_WRITES_ALONE = 100;
const TARGETS = { callsPerSecond: 300, linesPerSecond: 6_000, adminP50Ratio: 3 } as const;

interface LoadResult {
  calls: number;
  lines: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError?: string;
}

/**
 * Benchmark: daemon logs at fleet scale. Daemons (one token each) write 20-line batches through one
 * replica (load generator in its own process; RUNS) while admin writes (CreateLegion, which takes
 * the global write lock and appends to the feed) run one after another; reports WriteLogs calls
 * and lines per second with their latency, and admin write latency with and without that load.
 * On 2 cores the generator, the replica, the write service and PostgreSQL share the CPU, so the
 * closed loop also shows what CPU contention alone does to admin latency.
 */
export const fleetLogs: Benchmark = {
  name: 'fleet-logs',
  async run(ctx) {
    const daemonsMax = Math.max(...RUNS.map((r) => r.daemons));
    const tokens: string[] = [];
    // Ten devices of a hundred daemon tokens each: a token per daemon, as the rate limit is per token.
    for (let d = 0; d < daemonsMax / 100; d++) tokens.push(...(await ctx.admin.provisionDevice(900_000 + d, [], 100)).tokens);
    const replica = await ctx.system.startReplica();
    const legions = new LegionServiceClient(ctx.system.write.address, credentials.createInsecure());
    const md = new Metadata();
    md.set('x-api-key', ctx.system.adminToken);
    const adminWrite = async (): Promise<number> => {
      const started = performance.now();
      await unaryCall(legions, legions.createLegion, CreateLegionRequest.fromPartial({ legion: { title: `fleet-logs ${randomUUID()}` } }), md);
      return performance.now() - started;
    };
    try {
      const alone: number[] = [];
      for (let i = 0; i < ADMIN_WRITES_ALONE; i++) alone.push(await adminWrite());
      const aloneP50 = percentile(alone, 50);
      const rows: Row[] = [{ load: 'none', 'WriteLogs/s': '', 'lines/s': '', 'WriteLogs p50 ms': '', 'WriteLogs p99 ms': '', 'admin p50 ms': round(aloneP50), 'admin p99 ms': round(percentile(alone, 99)), errors: 0 }];
      const runs: Record<string, unknown>[] = [];
      for (const { daemons, callsPerSecond } of RUNS) {
        const intervalMs = callsPerSecond === 0 ? 0 : (1000 * daemons) / callsPerSecond;
        const load = `${daemons} daemons, ${callsPerSecond === 0 ? 'closed loop' : `${callsPerSecond} calls/s`}`;
        const child = forkLoad('log-writers.js', [
          JSON.stringify({ target: replica.address, tokens: tokens.slice(0, daemons), daemons, lines: LINES_PER_BATCH, warmupMs: WARMUP_MS, durationMs: WINDOW_MS, intervalMs }),
        ]);
        try {
          await nextMessage(child, 'measuring', 60_000);
          const result = nextMessage<LoadResult>(child, 'result', WINDOW_MS + 30_000);
          const loaded: number[] = [];
          let done = false;
          void result.finally(() => (done = true));
          while (!done) loaded.push(await adminWrite());
          const r = await result;
          const p50 = percentile(loaded, 50);
          rows.push({
            load,
            'WriteLogs/s': round(r.calls / r.seconds, 0),
            'lines/s': round(r.lines / r.seconds, 0),
            'WriteLogs p50 ms': round(r.p50Ms),
            'WriteLogs p99 ms': round(r.p99Ms),
            'admin p50 ms': round(p50),
            'admin p99 ms': round(percentile(loaded, 99)),
            errors: r.errors,
          });
          runs.push({
            daemons,
            offeredCallsPerSecond: callsPerSecond === 0 ? 'closed loop' : callsPerSecond,
            writeLogsPerSecond: round(r.calls / r.seconds, 0),
            linesPerSecond: round(r.lines / r.seconds, 0),
            writeLogsP50Ms: round(r.p50Ms),
            writeLogsP99Ms: round(r.p99Ms),
            adminP50Ms: round(p50),
            adminP99Ms: round(percentile(loaded, 99)),
            adminP50Ratio: round(p50 / aloneP50),
            adminWrites: loaded.length,
            errors: r.errors,
            ...(r.firstError ? { firstError: r.firstError } : {}),
          });
        } finally {
          await stopLoad(child);
        }
      }
      printTable(`Daemon logs through one replica (${LINES_PER_BATCH}-line batches, ${WINDOW_MS / 1000} s per run) and admin writes (CreateLegion, sequential)`, rows);
      printJson('fleet-logs', { linesPerBatch: LINES_PER_BATCH, adminAloneP50Ms: round(aloneP50), adminAloneP99Ms: round(percentile(alone, 99)), runs, targets: TARGETS });
    } finally {
      legions.close();
      await replica.stop();
    }
  },
};
