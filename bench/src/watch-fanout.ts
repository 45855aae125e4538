import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Benchmark, BenchContext } from './lib/context.js';
import { cpuSeconds, rssBytes } from './lib/proc.js';
import { printJson, printTable, type Row } from './lib/report.js';
import { percentile, round } from './lib/stats.js';
import { freePort } from '@titanbot/service-kit/free-port';
import { startPeer } from './lib/peer.js';
import { ROOT } from './lib/system.js';

const STREAMS = 10_000;
const CONNECTIONS = 100;
/** Changes measured; every one is a separate "one admin change" experiment. */
const ROUNDS = 5;
/**
 * Changes made before the measured ones. A process's first two fan-outs run while V8 is still
 * compiling the write path shared by every stream (measured: server CPU 110-170 ms a round, then
 * 50-70 ms from the third on, the empty peer as well); a replica that has served a few changes
 * is what the target is about. The warm-up rounds are printed and in the JSON.
 */
const WARM_UP_ROUNDS = 3;
const TARGETS = { p99Ms: 100, rssIdleMiB: 512 } as const;
const MiB = 1024 * 1024;

interface Ready {
  type: 'ready';
  version: string;
  errors: number;
}
interface Result {
  type: 'result';
  arrivals: (number | null)[];
  received: number;
  early: number;
  errors: number;
  cpuMs: number;
}

/** Resolves with the child's next IPC message of `type`; rejects if it exits or `timeoutMs` passes. */
export function nextMessage<T>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no '${type}' from the load process within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (m: { type?: string }): void => {
      if (m.type === type) finish(undefined, m as T);
    };
    const onExit = (code: number | null): void => finish(new Error(`the load process exited with ${code}`));
    const finish = (err: Error | undefined, value?: T): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(value!);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Forks a load generator from bench/dist/load (stdout ignored, stderr shared, IPC channel). */
export function forkLoad(script: string, args: string[]): ChildProcess {
  return fork(path.join(ROOT, 'bench/dist/load', script), args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
}

export async function stopLoad(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  if (child.connected) child.send({ type: 'stop' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** The sum of a Prometheus series over all its labels from `http://address/metrics`. */
export async function scrapeSum(metricsAddress: string, name: string): Promise<number> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** One value of a Prometheus series (no labels) from `http://address/metrics`. */
export async function scrape(metricsAddress: string, name: string): Promise<number> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

/**
 * Extra env for the replica under test: BENCH_REPLICA_NODE_OPTIONS becomes its NODE_OPTIONS (e.g.
 * `--import=/tmp/prof/preload.mjs`, a preload that records a CPU profile; Node 20 refuses
 * `--cpu-prof` in NODE_OPTIONS).
 */
export function profileEnv(): Record<string, string> {
  const options = process.env['BENCH_REPLICA_NODE_OPTIONS'];
  return options ? { NODE_OPTIONS: options } : {};
}

/** What one series of rounds (WARM_UP_ROUNDS, then ROUNDS measured) gave. */
interface Rounds {
  rows: Row[];
  /** Latencies (ms) of every stream in the measured rounds. */
  pooled: number[];
  /** p99 (ms) of each warm-up round. */
  warmUpP99Ms: number[];
  worstMax: number;
  missing: number;
}

/**
 * Runs WARM_UP_ROUNDS and ROUNDS measured rounds on the streams `loader` holds: arms the loader, calls
 * `change` (which makes the server send every stream one message; resolves when its caller has the
 * answer) and takes each stream's time from just before `change` until its message arrived.
 * `serverPid`'s CPU per round is in the rows.
 */
async function runRounds(loader: ChildProcess, serverPid: number, change: (round: number) => Promise<void>): Promise<Rounds> {
  const rows: Row[] = [];
  const pooled: number[] = [];
  const warmUpP99Ms: number[] = [];
  let worstMax = 0;
  let missing = 0;
  for (let round_ = 1 - WARM_UP_ROUNDS; round_ <= ROUNDS; round_++) {
    const result = nextMessage<Result>(loader, 'result', 60_000);
    loader.send({ type: 'go' });
    await new Promise((r) => setTimeout(r, 50)); // the 'go' is delivered before the change
    const cpu0 = await cpuSeconds(serverPid);
    const t0 = performance.timeOrigin + performance.now();
    await change(round_);
    const callMs = performance.timeOrigin + performance.now() - t0;
    const r = await result;
    const serverCpuMs = ((await cpuSeconds(serverPid)) - cpu0) * 1000;
    const latencies = r.arrivals.filter((a): a is number => a !== null).map((a) => a - t0);
    const lost = STREAMS - latencies.length;
    const max = lost ? Number.POSITIVE_INFINITY : Math.max(...latencies);
    if (round_ > 0) {
      pooled.push(...latencies);
      worstMax = Math.max(worstMax, max);
      missing += lost;
    } else warmUpP99Ms.push(round(percentile(latencies, 99)));
    rows.push({
      round: round_ <= 0 ? `warm-up ${round_ + WARM_UP_ROUNDS}` : round_,
      received: latencies.length,
      'call ms': round(callMs),
      'min ms': round(Math.min(...latencies)),
      'p50 ms': round(percentile(latencies, 50)),
      'p99 ms': round(percentile(latencies, 99)),
      'max ms': round(max),
      'server CPU ms': round(serverCpuMs),
      'loader CPU ms': round(r.cpuMs),
      errors: r.errors,
      early: r.early,
    });
    await new Promise((r2) => setTimeout(r2, 1_000));
  }
  return { rows, pooled, warmUpP99Ms, worstMax, missing };
}

/**
 * Opens `streams` WatchVersion streams of scope `logicalId` on `address` over `connections`
 * connections, presenting `tokens` in turn, in a load process (load/watchers.ts); resolves with it
 * once all are open, or stops it and throws when one failed or they took over 120 s.
 */
export async function openWatchers(address: string, tokens: readonly string[], streams: number, connections: number, logicalId: number): Promise<ChildProcess> {
  const loader = forkLoad('watchers.js', [address, tokens.join(','), String(streams), String(connections), String(logicalId)]);
  const ready = await nextMessage<Ready>(loader, 'ready', 120_000).catch(async (err: unknown) => {
    await stopLoad(loader);
    throw err;
  });
  if (ready.errors) {
    await stopLoad(loader);
    throw new Error(`${ready.errors} streams to ${address} failed while opening`);
  }
  return loader;
}

/**
 * The floor: the same streams on the empty peer (bench/src/peers/empty-server.ts), which on
 * SIGUSR2 sends each one message the way the replica does, with no write service, feed or SQLite
 * before it; measured in the same run as the replica, since the machine's speed moves between runs.
 */
async function emptyPeerRounds(ctx: BenchContext): Promise<Rounds> {
  const peer = await startPeer('bench/dist/peers/empty-server.js');
  try {
    const loader = await openWatchers(peer.address, ctx.fleet.tokens, STREAMS, CONNECTIONS, ctx.fleet.logicalId);
    try {
      return await runRounds(loader, peer.pid, async () => void process.kill(peer.pid, 'SIGUSR2'));
    } finally {
      await stopLoad(loader);
    }
  } finally {
    await peer.stop();
  }
}

/**
 * Benchmark 2: 10,000 WatchVersion streams on one dedicated replica over 100 connections, opened
 * by a separate load process; the replica's RSS with them idle; then one admin change to a global
 * habit per round and the time from just before the admin call until each stream has its message.
 * Then the same rounds on the empty peer, where nothing but the push itself stands between the
 * signal and the streams (the floor of the transport on this machine).
 */
export const watchFanout: Benchmark = {
  name: 'watch-fanout',
  async run(ctx: BenchContext): Promise<void> {
    const habit = await ctx.admin.createGlobalHabit('bench watch-fanout');
    const metricsAddress = `127.0.0.1:${await freePort()}`;
    // Started after the habit exists: SERVING means caught up, so the replica has it.
    const replica = await ctx.system.startReplica({ METRICS_ADDR: metricsAddress, ...profileEnv() });
    let replicaRounds: Rounds;
    let rssBaseline: number;
    let rssIdle: number;
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      rssBaseline = await rssBytes(replica.pid);
      const loader = await openWatchers(replica.address, ctx.fleet.tokens, STREAMS, CONNECTIONS, ctx.fleet.logicalId);
      try {
        for (let i = 0; (await scrape(metricsAddress, 'titanbot_watch_streams_active')) < STREAMS; i++) {
          if (i > 100) throw new Error('the replica does not report every stream open');
          await new Promise((r) => setTimeout(r, 100));
        }
        await new Promise((r) => setTimeout(r, 1_000));
        rssIdle = await rssBytes(replica.pid);
        replicaRounds = await runRounds(loader, replica.pid, async (round_) => void (await ctx.admin.touchHabit(habit, `fan-out ${round_} ${Date.now()}`)));
      } finally {
        await stopLoad(loader);
      }
    } finally {
      await replica.stop();
    }
    const floor = await emptyPeerRounds(ctx);

    const { pooled, worstMax, missing } = replicaRounds;
    const p50Ms = round(percentile(pooled, 50));
    const p99Ms = round(percentile(pooled, 99));
    const maxMs = round(worstMax);
    const floorP50Ms = round(percentile(floor.pooled, 50));
    const floorP99Ms = round(percentile(floor.pooled, 99));
    const rssIdleMiB = round(rssIdle / MiB, 1);
    printTable(
      `watch-fanout: ${STREAMS} WatchVersion streams over ${CONNECTIONS} connections on one replica (scope ${ctx.fleet.logicalId}), one change to a global habit per round; ms from just before the admin call (call ms) until the stream's message`,
      replicaRounds.rows,
    );
    printTable(
      `watch-fanout reference: the same streams on the empty peer, one push per round (SIGUSR2; no write service, feed or SQLite); ms from just before the signal`,
      floor.rows,
    );
    printTable('watch-fanout: summary (rounds 1..' + ROUNDS + ' pooled)', [
      { figure: 'p50 ms', value: p50Ms, target: '' },
      { figure: 'p99 ms', value: p99Ms, target: `< ${TARGETS.p99Ms}` },
      { figure: 'max ms', value: maxMs, target: '' },
      { figure: 'empty peer p50 ms', value: floorP50Ms, target: '' },
      { figure: 'empty peer p99 ms', value: floorP99Ms, target: '' },
      { figure: 'RSS before streams MiB', value: round(rssBaseline / MiB, 1), target: '' },
      { figure: `RSS with ${STREAMS} idle watchers MiB`, value: rssIdleMiB, target: `< ${TARGETS.rssIdleMiB}` },
      { figure: 'RSS per watcher KiB', value: round((rssIdle - rssBaseline) / 1024 / STREAMS, 2), target: '' },
    ]);
    printJson('watch-fanout', {
      streams: STREAMS,
      connections: CONNECTIONS,
      rounds: ROUNDS,
      warmUpRounds: WARM_UP_ROUNDS,
      warmUpP99Ms: replicaRounds.warmUpP99Ms,
      missing,
      p50Ms,
      p99Ms,
      maxMs,
      emptyPeer: { p50Ms: floorP50Ms, p99Ms: floorP99Ms, warmUpP99Ms: floor.warmUpP99Ms, missing: floor.missing },
      rssBaselineMiB: round(rssBaseline / MiB, 1),
      rssIdleMiB,
      targets: { p99Ms: `< ${TARGETS.p99Ms}`, rssIdleMiB: `< ${TARGETS.rssIdleMiB}` },
      met: { p99Ms: missing === 0 && p99Ms < TARGETS.p99Ms, rssIdleMiB: rssIdleMiB < TARGETS.rssIdleMiB },
    });
  },
};
