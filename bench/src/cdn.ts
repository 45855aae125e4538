import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '@titanbot/service-kit/free-port';
import type { Benchmark, BenchContext } from './lib/context.js';
import { startNginxCache, type NginxCache } from './lib/nginx.js';
import { cpuSeconds } from './lib/proc.js';
import { printJson, printTable, type Row } from './lib/report.js';
import { percentile, round } from './lib/stats.js';
import type { HerdDaemonsConfig } from './load/herd-daemons.js';
import { forkLoad, nextMessage, scrape, stopLoad } from './watch-fanout.js';

const DAEMONS = 2_000;
const CONNECTIONS = 50;
const MiB = 1024 * 1024;

interface HerdResult {
  type: 'result';
  done: (number | null)[];
  refused: number;
  errors: number;
  gaveUp: number;
  grpcBytes: number;
  urlBytes: number;
}

type Route = 'grpc' | 'direct' | 'nginx';
const RUNS: { name: string; route: Route }[] = [
  { name: 'DownloadExport chunks (no URL)', route: 'grpc' },
  { name: 'URL at the replica (no cache)', route: 'direct' },
  { name: 'URL through nginx (docs/cdn/nginx.conf)', route: 'nginx' },
];

/**
 * Benchmark: 2,000 daemons that all need the new version of the largest scope's file (a change
 * made after they are connected, so no cache has it), by three routes side by side: DownloadExport
 * chunks; the signed URL fetched from the replica's origin itself; the signed URL through nginx
 * caching in front of it. Per route: time from the admin change until each daemon holds a verified
 * file (p50, p99, max), bytes the replica sent (chunks and origin answers), bytes nginx sent, the
 * replica's CPU, refusals (DOWNLOADS_BUSY, gRPC only). Target: through the cache the replica sends
 * each distinct file once.
 */
export const cdn: Benchmark = {
  name: 'cdn',
  async run(ctx: BenchContext) {
    const habit = await ctx.admin.createGlobalHabit('bench cdn');
    const rows: Row[] = [];
    const figures: Record<string, unknown>[] = [];
    for (const run of RUNS) {
      const originAddress = `127.0.0.1:${await freePort()}`;
      const metricsAddress = `127.0.0.1:${await freePort()}`;
      const nginx: NginxCache | undefined = run.route === 'nginx' ? await startNginxCache(originAddress) : undefined;
      const urls: Record<string, string> = run.route === 'grpc' ? {} : { EXPORT_HTTP_ADDR: originAddress, EXPORT_PUBLIC_BASE_URL: `http://${nginx?.address ?? originAddress}` };
      const replica = await ctx.system.startReplica({ METRICS_ADDR: metricsAddress, ...urls });
      const dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-bench-cdn-'));
      const config: HerdDaemonsConfig = {
        address: replica.address,
        tokens: ctx.fleet.tokens,
        daemons: DAEMONS,
        connections: CONNECTIONS,
        syncs: 0,
        logicalId: ctx.fleet.logicalId,
        dir,
        acceptPublicUrl: true,
        awaitNewVersion: true,
      };
      const load = forkLoad('herd-daemons.js', [JSON.stringify(config)]);
      try {
        await nextMessage(load, 'ready', 120_000);
        const [httpBytes0, cpu0, nginxLines0] = [await scrape(metricsAddress, 'titanbot_export_http_bytes_total'), await cpuSeconds(replica.pid), (await nginx?.accessLog())?.length ?? 0];
        const result = nextMessage<HerdResult>(load, 'result', 600_000);
        load.send({ type: 'go' });
        await new Promise((r) => setTimeout(r, 50)); // the 'go' is delivered before the change
        const t0 = performance.timeOrigin + performance.now();
        await ctx.admin.touchHabit(habit, `cdn ${run.route} ${Date.now()}`);
        const r = await result;
        const cpu = (await cpuSeconds(replica.pid)) - cpu0;
        const originBytes = (await scrape(metricsAddress, 'titanbot_export_http_bytes_total')) - httpBytes0;
        const nginxLines = ((await nginx?.accessLog()) ?? []).slice(nginxLines0);
        const nginxBytes = nginxLines.reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
        const misses = nginxLines.filter((line) => / MISS /.test(line)).length;
        const times = r.done.filter((t): t is number => t !== null).map((t) => t - t0);
        const fileBytes = Math.round((r.grpcBytes + r.urlBytes) / Math.max(1, times.length));
        const figure = {
          route: run.route,
          daemons: DAEMONS,
          holding: times.length,
          gaveUp: r.gaveUp,
          p50Ms: round(percentile(times, 50)),
          p99Ms: round(percentile(times, 99)),
          maxMs: round(Math.max(...times)),
          fileBytes,
          replicaBytes: r.grpcBytes + (Number.isNaN(originBytes) ? 0 : originBytes),
          nginxBytes,
          nginxMisses: misses,
          refused: r.refused,
          errors: r.errors,
          replicaCpuSeconds: round(cpu, 2),
        };
        figures.push(figure);
        rows.push({
          route: run.name,
          holding: `${times.length} / ${DAEMONS}`,
          'p50 / p99 / max ms': `${figure.p50Ms} / ${figure.p99Ms} / ${figure.maxMs}`,
          'replica sent MiB': round(figure.replicaBytes / MiB, 2),
          'replica sent (files)': round(figure.replicaBytes / fileBytes, 2),
          'nginx sent MiB': round(nginxBytes / MiB, 2),
          'nginx misses': run.route === 'nginx' ? misses : '',
          'refused (retried)': r.refused,
          'replica CPU s': figure.replicaCpuSeconds,
          errors: r.errors,
        });
      } finally {
        await stopLoad(load);
        await replica.stop();
        await nginx?.stop();
        await rm(dir, { recursive: true, force: true });
      }
    }
    printTable(`cdn: ${DAEMONS} daemons need scope ${ctx.fleet.logicalId}'s new file at once (${CONNECTIONS} gRPC connections); time from the admin change`, rows);
    const cached = figures.find((f) => f['route'] === 'nginx') as { replicaBytes: number; fileBytes: number; gaveUp: number };
    printJson('cdn', {
      runs: figures,
      targets: { replicaFilesThroughNginx: 1, gaveUp: 0 },
      met: { replicaSendsEachFileOnce: cached.replicaBytes === cached.fileBytes, noneGaveUp: figures.every((f) => f['gaveUp'] === 0) },
    });
  },
};
