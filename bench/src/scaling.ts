import { measureTarget } from './check-version.js';
import type { Benchmark } from './lib/context.js';
import { printJson, printTable } from './lib/report.js';
import { round } from './lib/stats.js';
import type { ServiceProcess } from './lib/system.js';

/**
 * Benchmark 5: the check-version load against one read replica, then against two (the 8
 * channels alternate between them), with the same client pool. Reports rps, latency and CPU per
 * call of the replicas and of the load generator, which shares the machine's cores with them.
 */
export const scaling: Benchmark = {
  name: 'scaling',
  async run(ctx) {
    const started: ServiceProcess[] = [];
    try {
      const a = await ctx.system.startReplica();
      started.push(a);
      const b = await ctx.system.startReplica();
      started.push(b);
      const one = await measureTarget('1 replica', ctx, [a.address], [a.pid]);
      const two = await measureTarget('2 replicas', ctx, [a.address, b.address], [a.pid, b.pid]);
      const cores = (await import('node:os')).availableParallelism();
      const busyCores = (f: typeof one): number => ((f.cpuUsPerCall + f.generatorCpuUsPerCall) * f.load.rps) / 1e6;
      printTable(
        'scaling: CheckVersion, 64 in flight over 8 channels, 1 vs 2 read replicas (1 s warm-up + 5 s measured each)',
        [one, two].map((f) => ({
          replicas: f.target,
          rps: Math.round(f.load.rps),
          'p50 ms': round(f.load.p50Ms, 3),
          'p99 ms': round(f.load.p99Ms, 3),
          'replicas CPU µs/call': round(f.cpuUsPerCall, 1),
          'loadgen CPU µs/call': round(f.generatorCpuUsPerCall, 1),
          'cores busy (replicas+loadgen)': round(busyCores(f), 2),
          errors: f.load.errors,
        })),
      );
      const ratio = two.load.rps / one.load.rps;
      const loadgenShare = one.generatorCpuUsPerCall / (one.generatorCpuUsPerCall + one.cpuUsPerCall);
      printJson('scaling', {
        cores,
        oneReplicaRps: Math.round(one.load.rps),
        oneReplicaP50Ms: round(one.load.p50Ms, 3),
        oneReplicaP99Ms: round(one.load.p99Ms, 3),
        oneReplicaCpuUsPerCall: round(one.cpuUsPerCall, 1),
        twoReplicasRps: Math.round(two.load.rps),
        twoReplicasP50Ms: round(two.load.p50Ms, 3),
        twoReplicasP99Ms: round(two.load.p99Ms, 3),
        twoReplicasCpuUsPerCall: round(two.cpuUsPerCall, 1),
        rpsRatio: round(ratio, 2),
        loadgenCpuUsPerCall: round(two.generatorCpuUsPerCall, 1),
        coresBusyOne: round(busyCores(one), 2),
        coresBusyTwo: round(busyCores(two), 2),
        errors: one.load.errors + two.load.errors,
        secondReplicaAddsThroughput: ratio > 1,
        limit:
          `${cores} cores shared by the load generator and the replica(s): the generator alone spends ` +
          `${round(one.generatorCpuUsPerCall, 1)} µs/call (${Math.round(loadgenShare * 100)} % of the CPU per call), ` +
          `so with ${round(busyCores(one), 2)} of ${cores} cores busy with one replica a second replica can only take up the idle rest; ` +
          `on more cores (or with the generator on another machine) each replica's own ${round(one.cpuUsPerCall, 1)} µs/call sets the bound`,
      });
    } finally {
      for (const p of started.reverse()) await p.stop();
    }
  },
};
