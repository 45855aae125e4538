import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inCohort } from '@titanbot/service-kit/cohort';
import { startPeer } from './lib/peer.js';
import type { Benchmark, BenchContext } from './lib/context.js';
import { insertDevices } from './lib/fixture.js';
import { cpuSeconds } from './lib/proc.js';
import { printJson, printTable, type Row } from './lib/report.js';
import { percentile, round } from './lib/stats.js';
import type { DeltaDaemonsConfig, DeltaDaemonsResult } from './load/delta-daemons.js';
import { measureTarget } from './check-version.js';
import { forkLoad, nextMessage, openWatchers, profileEnv, scrapeSum, stopLoad } from './watch-fanout.js';
import { freePort } from '@titanbot/service-kit/free-port';
import type { ServiceProcess } from './lib/system.js';

const DAEMONS = 10_000;
const CONNECTIONS = 100;
const STEPS = [1, 10, 100];
const TARGETS = { checkVersionCpuRatio: 1.2 } as const;

interface Ready {
  type: 'ready';
  errors?: number;
}

/** Waits (at most 60 s) until `pid` has used under 50 ms of CPU in a second: the work before a measurement has settled. */
async function settled(pid: number): Promise<void> {
  for (let i = 0; i < 60; i++) {
    const before = await cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, 1_000));
    if ((await cpuSeconds(pid)) - before < 0.05) return;
  }
}

/**
 * CPU µs per empty unary RPC on `empty` while a load process holds DAEMONS WatchVersion streams
 * open on it (over CONNECTIONS connections, as the daemons hold theirs on the replica).
 */
async function emptyWithStreams(ctx: BenchContext, empty: ServiceProcess, tokens: string[]): Promise<number> {
  const watchers = await openWatchers(empty.address, tokens, DAEMONS, CONNECTIONS, ctx.fleet.logicalId);
  try {
    await settled(empty.pid);
    return (await measureTarget(`empty RPC, ${DAEMONS} streams open`, ctx, [empty.address], [empty.pid], { tokens })).cpuUsPerCall;
  } finally {
    await stopLoad(watchers);
  }
}

/**
 * Benchmark: a one-habit global change rolled out in steps of 1 %, 10 % and 100 % to 10,000
 * watching daemons, each its own device (inserted into PostgreSQL, with its own token), on one
 * replica. Per step: how many daemons the step adds to the cohort (known beforehand from the
 * cohort function), the time from just before StartRollout or AdvanceRollout until each of them
 * holds the candidate (verified in memory, support in load/delta-daemons.ts), and the bytes each
 * downloaded; then that completing the rollout costs no daemon a download. During the rollout
 * (at 10 %), CheckVersion's CPU per call on the replica, for cohort and other devices, beside the
 * same replica's before the rollout and the empty unary RPC's, measured in the same run twice: on
 * an idle process, and on one holding as many open WatchVersion streams over as many connections
 * as the replica (so that what holding them costs each call is in both figures).
 */
export const rollout: Benchmark = {
  name: 'rollout',
  async run(ctx: BenchContext) {
    const habit = await ctx.admin.createGlobalHabit('bench rollout');
    const fleet = await insertDevices(ctx.system.databaseUrl, ctx.fleet.logicalId, DAEMONS);
    const metricsAddress = `127.0.0.1:${await freePort()}`;
    const started: ServiceProcess[] = [];
    // Started after the devices exist: SERVING means caught up, so the replica knows every token.
    const replica = await ctx.system.startReplica({ METRICS_ADDR: metricsAddress, ...profileEnv() });
    started.push(replica);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-bench-rollout-'));
    const tokensFile = path.join(dir, 'tokens');
    await writeFile(tokensFile, fleet.tokens.join('\n'), { mode: 0o600 });
    const config: DeltaDaemonsConfig = { address: replica.address, tokens: [], tokensFile, daemons: DAEMONS, connections: CONNECTIONS, logicalId: ctx.fleet.logicalId, mayDelta: true };
    const daemons = forkLoad('delta-daemons.js', [JSON.stringify(config)]);
    const rows: Row[] = [];
    const steps: Record<string, unknown>[] = [];
    let checkVersion: { emptyUs: number; emptyWithStreamsUs: number; beforeUs: number; rolloutUs: number; ratio: number; ratioToEmptyWithStreams: number; ratioToBefore: number } | undefined;
    let beforeUs = 0;
    try {
      const ready = await nextMessage<Ready>(daemons, 'ready', 300_000);
      if (ready.errors) throw new Error(`${ready.errors} simulated daemons failed while opening`);
      // The same replica, the same 10,000 watches, no rollout yet: what a rollout adds is the difference.
      await settled(replica.pid);
      beforeUs = (await measureTarget('CheckVersion before the rollout', ctx, [replica.address], [replica.pid], { tokens: fleet.tokens.slice(0, 8) })).cpuUsPerCall;
      const created = await ctx.admin.createRollout([{ change: { $case: 'update', value: { habit: { uuid: habit, comment: 'rolled out', pixels: [], shapes: [], etag: '' }, updateMask: ['comment'] } } }]);
      const cohortSteps = STEPS.map((percent) => ({ percent, deviceUuids: [] }));
      const member = (i: number, step: number): boolean => step >= 0 && inCohort(created.uuid, cohortSteps, step, fleet.uuids[i]!);
      for (let step = 0; step < STEPS.length; step++) {
        const joining = fleet.uuids.flatMap((_, i) => (member(i, step) && !member(i, step - 1) ? [i] : []));
        const result = nextMessage<DeltaDaemonsResult>(daemons, 'result', 360_000);
        daemons.send({ type: 'go', expect: joining });
        await new Promise((r) => setTimeout(r, 100)); // the 'go' is delivered before the call
        const cpu0 = await cpuSeconds(replica.pid);
        const t0 = performance.timeOrigin + performance.now();
        if (step === 0) await ctx.admin.startRollout(created.uuid, STEPS.map((percent) => ({ percent, deviceUuids: [], minDuration: undefined })));
        else await ctx.admin.advanceRollout(created.uuid);
        const d = await result;
        const cpu = (await cpuSeconds(replica.pid)) - cpu0;
        const latencies = d.done.filter((t): t is number => t !== null).map((t) => t - t0);
        const figures = {
          step: `${STEPS[step]} %`,
          joining: joining.length,
          holding: latencies.length,
          'bytes/daemon': Math.round(d.bytes / Math.max(1, latencies.length)),
          deltas: d.deltas,
          'p50 ms': round(percentile(latencies, 50)),
          'p99 ms': round(percentile(latencies, 99)),
          'max ms': round(Math.max(...latencies)),
          'replica CPU s': round(cpu, 2),
          'refused (retried)': d.refused,
          errors: d.errors,
        };
        rows.push(figures);
        steps.push(figures);
        if (STEPS[step] === 10) {
          // CheckVersion while the rollout runs: 4 cohort and 4 other devices, one per channel.
          const cohort = fleet.tokens.filter((_, i) => member(i, step)).slice(0, 4);
          const rest = fleet.tokens.filter((_, i) => !member(i, step)).slice(0, 4);
          await settled(replica.pid);
          const empty = await startPeer('bench/dist/peers/empty-server.js');
          started.push(empty);
          const e = await measureTarget('empty RPC (ceiling)', ctx, [empty.address], [empty.pid], { tokens: [...cohort, ...rest] });
          const r = await measureTarget('CheckVersion during the rollout', ctx, [replica.address], [replica.pid], { tokens: [...cohort, ...rest] });
          const es = await emptyWithStreams(ctx, empty, [...cohort, ...rest]);
          checkVersion = {
            emptyUs: round(e.cpuUsPerCall, 1),
            emptyWithStreamsUs: round(es, 1),
            beforeUs: round(beforeUs, 1),
            rolloutUs: round(r.cpuUsPerCall, 1),
            ratio: round(r.cpuUsPerCall / e.cpuUsPerCall, 2),
            ratioToEmptyWithStreams: round(r.cpuUsPerCall / es, 2),
            ratioToBefore: round(r.cpuUsPerCall / beforeUs, 2),
          };
        }
      }
      // Completing: the candidate becomes the stable content, which every daemon already holds.
      const downloads0 = await scrapeSum(metricsAddress, 'titanbot_export_downloads_total');
      await ctx.admin.advanceRollout(created.uuid);
      await new Promise((r) => setTimeout(r, 3_000));
      const afterCompletion = (await scrapeSum(metricsAddress, 'titanbot_export_downloads_total')) - downloads0;
      printTable(`rollout: a one-habit global change to ${DAEMONS} watching daemons (each its own device) in steps ${STEPS.join(' / ')} %; ms from just before Start/AdvanceRollout until each joining daemon holds the candidate`, rows);
      const cv = checkVersion!;
      const ratios = (us: number): Row => ({ 'ratio to idle empty': round(us / cv.emptyUs, 2), 'ratio to empty with streams': round(us / cv.emptyWithStreamsUs, 2) });
      printTable(`rollout: CPU per call with 64 calls in flight over 8 channels (at 10 %: 4 cohort and 4 other devices); the replica holds ${DAEMONS} watches`, [
        { target: 'empty RPC, idle process (ceiling)', 'CPU µs/call': cv.emptyUs, ...ratios(cv.emptyUs) },
        { target: `empty RPC, ${DAEMONS} streams open`, 'CPU µs/call': cv.emptyWithStreamsUs, ...ratios(cv.emptyWithStreamsUs) },
        { target: 'CheckVersion before the rollout', 'CPU µs/call': cv.beforeUs, ...ratios(cv.beforeUs) },
        { target: 'CheckVersion at 10 %', 'CPU µs/call': cv.rolloutUs, ...ratios(cv.rolloutUs) },
      ]);
      process.stdout.write(`rollout: downloads after completing it: ${afterCompletion}\n`);
      printJson('rollout', {
        daemons: DAEMONS,
        steps,
        checkVersion,
        downloadsAfterCompletion: afterCompletion,
        targets: { checkVersionCpuRatio: `<= ${TARGETS.checkVersionCpuRatio}` },
        met: { checkVersionCpuRatio: cv.ratio <= TARGETS.checkVersionCpuRatio, checkVersionCpuRatioToEmptyWithStreams: cv.ratioToEmptyWithStreams <= TARGETS.checkVersionCpuRatio },
      });
    } finally {
      await stopLoad(daemons);
      for (const s of started.reverse()) await s.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
};
