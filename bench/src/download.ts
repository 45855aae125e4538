import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import { DaemonServiceClient, DownloadExportRequest, type DownloadExportResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import type { Benchmark, BenchContext } from './lib/context.js';
import type { DownloadLoadOptions, DownloadLoadResult } from './load/download.js';
import { measureCpu, rssBytes } from './lib/proc.js';
import { printJson, printTable, type Row } from './lib/report.js';
import { round } from './lib/stats.js';
import { freePort } from '@titanbot/service-kit/free-port';
import { ROOT, startNode, waitServing } from './lib/system.js';

const MIB = 1024 * 1024;
/** The daemon client's window (packages/daemon-client createDaemonClient). */
const WINDOW_16MIB = 16 * MIB;
/** Seconds per throughput run, and runs per server (alternating). */
const RUN_SECONDS = 1.5;
const ROUNDS = 3;

/**
 * Targets from the issue. RSS, as stated here: the replica's peak under 200 concurrent downloads at
 * most 320 MiB (it idles at 110-165 MiB with the fixture loaded), and at most 32 MiB above its peak
 * under 20 (about 160 KiB per extra download: one 128 KiB chunk in flight, no copy of the file).
 */
const TARGETS = { ratioToCeiling: 0.7, ratioToNaive: 20, peakRssMiB: 320, rssGrowthMiB200vs20: 32 } as const;

/** One download with the daemon's own stub; returns the file, its chunk size and the time taken (ms). */
async function downloadOnce(client: DaemonServiceClient, token: string, logicalId: number): Promise<{ data: Buffer; chunkBytes: number; ms: number }> {
  const md = new Metadata();
  md.set('x-api-key', token);
  const started = performance.now();
  const parts: Buffer[] = [];
  let chunkBytes = 0;
  let size = -1;
  await new Promise<void>((resolve, reject) => {
    const stream = client.downloadExport(DownloadExportRequest.fromPartial({ logicalId, version: '', offset: 0 }), md);
    stream.on('data', (m: DownloadExportResponse) => {
      if (m.kind?.$case === 'header') size = m.kind.value.sizeBytes;
      if (m.kind?.$case === 'chunk') {
        parts.push(Buffer.from(m.kind.value.data));
        chunkBytes = Math.max(chunkBytes, m.kind.value.data.length);
      }
    });
    stream.on('error', reject);
    stream.on('end', resolve);
  });
  const data = Buffer.concat(parts);
  if (data.length !== size) throw new Error(`download: got ${data.length} bytes, the header said ${size}`);
  return { data, chunkBytes, ms: performance.now() - started };
}

/** Runs the load generator in its own process; `during` runs while it does (e.g. RSS sampling). */
async function runLoad(options: DownloadLoadOptions): Promise<DownloadLoadResult> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bench/dist/load/download.js'), JSON.stringify(options)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`download load generator exited with ${code}`);
  return JSON.parse(out.trim().split('\n').pop()!) as DownloadLoadResult;
}

type LoadFigures = DownloadLoadResult & { serverCpuShare: number };

/**
 * A load run, with the serving process's CPU per second of it (PostgreSQL's is left out: other
 * benchmarks on the same server would count too).
 */
async function measuredLoad(pid: number, options: DownloadLoadOptions): Promise<LoadFigures> {
  const { result, cpuSeconds } = await measureCpu([pid], false, () => runLoad(options));
  return { ...result, serverCpuShare: cpuSeconds / result.seconds };
}

/** Peak RSS (bytes) of `pid`, sampled every 50 ms while `work` runs; also the peak of each half. */
async function peakRss<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peak: number; firstHalf: number; secondHalf: number }> {
  const samples: { at: number; rss: number }[] = [];
  let running = true;
  const sampler = (async () => {
    while (running) {
      samples.push({ at: performance.now(), rss: await rssBytes(pid).catch(() => 0) });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const result = await work().finally(() => (running = false));
  await sampler;
  const mid = (samples[0]!.at + samples[samples.length - 1]!.at) / 2;
  const max = (xs: number[]): number => xs.reduce((a, b) => Math.max(a, b), 0);
  return {
    result,
    peak: max(samples.map((s) => s.rss)),
    firstHalf: max(samples.filter((s) => s.at <= mid).map((s) => s.rss)),
    secondHalf: max(samples.filter((s) => s.at > mid).map((s) => s.rss)),
  };
}

/** A peer server from bench/dist/peers, waited for until SERVING; stop() ends it. */
async function startPeer(script: string, env: Record<string, string>, args: string[] = []): Promise<{ address: string; pid: number; stop: () => Promise<void> }> {
  const child = startNode(script, env, args);
  const failed = new Promise<never>((_resolve, reject) => child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`))));
  const address = Object.entries(env).find(([k]) => k.endsWith('_ADDR'))![1];
  await Promise.race([waitServing(address), failed]);
  failed.catch(() => undefined);
  return {
    address,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Benchmark 3: DownloadExport of the largest scope's cached export against the raw grpc-js
 * stream of the same bytes in the same chunks (the ceiling) and against the naive peer that builds
 * the file from PostgreSQL per call; the cold build; the replica's peak RSS under 200 and 20
 * concurrent downloads. For experiments: BENCH_CHUNK_BYTES sets the replica's EXPORT_CHUNK_BYTES,
 * BENCH_REPLICA_NODE_OPTIONS its NODE_OPTIONS (e.g. `--import <a preload that starts the inspector
 * profiler>`: Node 20 refuses `--cpu-prof` there).
 */
async function run(ctx: BenchContext): Promise<void> {
  const { logicalId } = ctx.fleet;
  const token = ctx.fleet.tokens[0]!;
  const env: Record<string, string> = {};
  if (process.env['BENCH_REPLICA_NODE_OPTIONS']) env['NODE_OPTIONS'] = process.env['BENCH_REPLICA_NODE_OPTIONS'];
  if (process.env['BENCH_CHUNK_BYTES']) env['EXPORT_CHUNK_BYTES'] = process.env['BENCH_CHUNK_BYTES'];
  const replica = await ctx.system.startReplica(env);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-download-'));
  const stops: (() => Promise<void>)[] = [];
  try {
    // Cold build: the first call builds the export; warm calls show what the transfer alone costs.
    const client = new DaemonServiceClient(replica.address, credentials.createInsecure(), { 'grpc-node.flow_control_window': WINDOW_16MIB });
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
    const cold = await downloadOnce(client, token, logicalId);
    const warm: number[] = [];
    for (let i = 0; i < 5; i++) warm.push((await downloadOnce(client, token, logicalId)).ms);
    client.close();
    const warmMs = Math.min(...warm);
    const coldBuildMs = cold.ms - warmMs;
    const file = path.join(dir, 'export.sqlite');
    await writeFile(file, cold.data);

    const raw = await startPeer('bench/dist/peers/raw-stream-server.js', { RAW_ADDR: `127.0.0.1:${await freePort()}` }, [file, String(cold.chunkBytes)]);
    stops.push(raw.stop);
    const naive = await startPeer('bench/dist/peers/naive-download-server.js', {
      NAIVE_ADDR: `127.0.0.1:${await freePort()}`,
      DATABASE_URL: ctx.system.databaseUrl,
      CHUNK_BYTES: String(cold.chunkBytes),
      LOG_LEVEL: 'warn',
    });
    stops.push(naive.stop);

    const base = { token, logicalId, concurrency: 1, connections: 1, seconds: RUN_SECONDS, minCalls: 1, maxSeconds: 2 * RUN_SECONDS, windowBytes: WINDOW_16MIB };
    // The machine is shared: the ceiling and the replica run in alternation, ROUNDS short runs each,
    // and each keeps its best run (the least disturbed one).
    const runs: Record<'ceiling' | 'ceiling64' | 'cached' | 'cached64', LoadFigures[]> = { ceiling: [], ceiling64: [], cached: [], cached64: [] };
    for (let round = 0; round < ROUNDS; round++) {
      runs.ceiling.push(await measuredLoad(raw.pid, { ...base, target: raw.address, mode: 'raw' }));
      runs.cached.push(await measuredLoad(replica.pid, { ...base, target: replica.address, mode: 'daemon' }));
      runs.ceiling64.push(await measuredLoad(raw.pid, { ...base, target: raw.address, mode: 'raw', windowBytes: 0 }));
      runs.cached64.push(await measuredLoad(replica.pid, { ...base, target: replica.address, mode: 'daemon', windowBytes: 0 }));
    }
    const top = (xs: LoadFigures[]): LoadFigures => xs.reduce((a, b) => (b.mbPerSec > a.mbPerSec ? b : a));
    const [ceiling, ceiling64, cached, cached64] = [top(runs.ceiling), top(runs.ceiling64), top(runs.cached), top(runs.cached64)];
    const naiveRun = await measuredLoad(naive.pid, { ...base, target: naive.address, mode: 'daemon', seconds: 3, minCalls: 10, maxSeconds: 10 });
    for (const r of [ceiling, ceiling64, cached, cached64, naiveRun]) {
      if (r.fileBytes !== cold.data.length) throw new Error(`download: a load run got ${r.fileBytes}-byte files, expected ${cold.data.length}`);
    }

    // RSS: 200, then 20 downloads at once over the same 20 connections.
    const idleRss = await rssBytes(replica.pid);
    const many = { ...base, target: replica.address, mode: 'daemon' as const, connections: 20, seconds: 4 };
    const at200 = await peakRss(replica.pid, () => runLoad({ ...many, concurrency: 200 }));
    const at20 = await peakRss(replica.pid, () => runLoad({ ...many, concurrency: 20 }));

    const mb = (r: DownloadLoadResult): number => round(r.mbPerSec, 1);
    const cpu = (r: LoadFigures): Row => ({ 'server CPU': round(r.serverCpuShare), 'load CPU': round(r.clientCpuShare) });
    const rows: Row[] = [
      { server: 'raw grpc-js stream (ceiling)', window: '16 MiB', concurrency: 1, calls: ceiling.calls, 'MB/s': mb(ceiling), 'calls/s': round(ceiling.callsPerSec, 1), ...cpu(ceiling) },
      { server: 'raw grpc-js stream', window: '64 KiB', concurrency: 1, calls: ceiling64.calls, 'MB/s': mb(ceiling64), 'calls/s': round(ceiling64.callsPerSec, 1), ...cpu(ceiling64) },
      { server: 'read replica (cached)', window: '16 MiB', concurrency: 1, calls: cached.calls, 'MB/s': mb(cached), 'calls/s': round(cached.callsPerSec, 1), ...cpu(cached) },
      { server: 'read replica (cached)', window: '64 KiB', concurrency: 1, calls: cached64.calls, 'MB/s': mb(cached64), 'calls/s': round(cached64.callsPerSec, 1), ...cpu(cached64) },
      { server: 'naive peer (build per call)', window: '16 MiB', concurrency: 1, calls: naiveRun.calls, 'MB/s': mb(naiveRun), 'calls/s': round(naiveRun.callsPerSec, 2), ...cpu(naiveRun) },
      { server: 'read replica (cached)', window: '16 MiB', concurrency: 200, calls: at200.result.calls, 'MB/s': mb(at200.result), 'calls/s': round(at200.result.callsPerSec, 1), 'load CPU': round(at200.result.clientCpuShare), 'peak RSS MiB': round(at200.peak / MIB, 1) },
      { server: 'read replica (cached)', window: '16 MiB', concurrency: 20, calls: at20.result.calls, 'MB/s': mb(at20.result), 'calls/s': round(at20.result.callsPerSec, 1), 'load CPU': round(at20.result.clientCpuShare), 'peak RSS MiB': round(at20.peak / MIB, 1) },
    ];
    printTable(
      `download: largest scope (${cold.data.length} bytes, ${cold.chunkBytes}-byte chunks), cold build ${round(coldBuildMs, 1)} ms (first call ${round(cold.ms, 1)} ms, warm ${round(warmMs, 1)} ms), idle RSS ${round(idleRss / MIB, 1)} MiB; concurrency 1: best of ${ROUNDS} alternating ${RUN_SECONDS} s runs`,
      rows,
    );
    const ratioToCeiling = cached.mbPerSec / ceiling.mbPerSec;
    const ratioToNaive = cached.callsPerSec / naiveRun.callsPerSec;
    const peakRssMiB200 = at200.peak / MIB;
    const peakRssMiB20 = at20.peak / MIB;
    printJson('download', {
      fileBytes: cold.data.length,
      chunkBytes: cold.chunkBytes,
      coldBuildMs: round(coldBuildMs, 1),
      firstCallMs: round(cold.ms, 1),
      warmCallMs: round(warmMs, 2),
      ceilingMBps: mb(ceiling),
      ceilingMBps64KiB: mb(ceiling64),
      replicaMBps: mb(cached),
      replicaMBps64KiB: mb(cached64),
      replicaCallsPerSec: round(cached.callsPerSec, 1),
      ceilingServerCpu: round(ceiling.serverCpuShare),
      replicaServerCpu: round(cached.serverCpuShare),
      replicaLoadCpu: round(cached.clientCpuShare),
      naiveCallsPerSec: round(naiveRun.callsPerSec, 2),
      ratioToCeiling: round(ratioToCeiling),
      ratioToNaive: round(ratioToNaive, 1),
      idleRssMiB: round(idleRss / MIB, 1),
      peakRssMiB200: round(peakRssMiB200, 1),
      peakRssMiB20: round(peakRssMiB20, 1),
      rss200FirstHalfMiB: round(at200.firstHalf / MIB, 1),
      rss200SecondHalfMiB: round(at200.secondHalf / MIB, 1),
      mbps200: mb(at200.result),
      targets: TARGETS,
      met: {
        ratioToCeiling: ratioToCeiling >= TARGETS.ratioToCeiling,
        ratioToNaive: ratioToNaive >= TARGETS.ratioToNaive,
        peakRssBounded: peakRssMiB200 <= TARGETS.peakRssMiB,
        rssNotGrowing: peakRssMiB200 - peakRssMiB20 <= TARGETS.rssGrowthMiB200vs20,
      },
    });
  } finally {
    for (const stop of stops) await stop();
    await replica.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export const downloadBenchmark: Benchmark = { name: 'download', run };
