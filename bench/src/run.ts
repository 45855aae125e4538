import { LARGEST_SCOPE, adminClient, loadFixture } from './lib/fixture.js';
import type { Benchmark, BenchContext } from './lib/context.js';
import { startBenchSystem } from './lib/system.js';
import { watchFanout } from './watch-fanout.js';
import { feedLag } from './feed-lag.js';
import { downloadBenchmark } from './download.js';
import { checkVersion } from './check-version.js';
import { scaling } from './scaling.js';
import { feedApply } from './feed-apply.js';
import { hostileSoak } from './hostile-soak.js';
import { fleetLogs } from './fleet-logs.js';
import { fleetStatus } from './fleet-status.js';
import { secureEdge } from './secure-edge.js';
import { deltaFanout } from './delta-fanout.js';
import { consoleBench } from './console.js';
import { herd } from './herd.js';
import { cdn } from './cdn.js';
import { feedFanout } from './feed-fanout.js';
import { rollout } from './rollout.js';

/** Every benchmark, in run order; `npm run bench -- <name>...` runs a subset. */
const BENCHMARKS: Benchmark[] = [checkVersion, scaling, watchFanout, downloadBenchmark, feedLag, feedApply, fleetLogs, fleetStatus, secureEdge, deltaFanout, herd, cdn, feedFanout, rollout, consoleBench, hostileSoak];

/**
 * `npm run bench`: starts the system (each service its own process, from the built output),
 * loads the fixture, provisions a device, then runs the benchmarks one after another and stops
 * everything. Not part of `npm test`.
 */
async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const selected = wanted.length ? BENCHMARKS.filter((b) => wanted.includes(b.name)) : BENCHMARKS;
  const started = performance.now();
  const system = await startBenchSystem();
  const admin = adminClient(system.write.address, system.adminToken);
  try {
    await loadFixture(system.databaseUrl);
    const fleet = { ...(await admin.provisionDevice(7, [LARGEST_SCOPE], 8)), logicalId: LARGEST_SCOPE };
    const ctx: BenchContext = { system, admin, fleet };
    process.stderr.write(`bench: system up and fixture loaded in ${Math.round(performance.now() - started)} ms\n`);
    const limit = process.env['BENCH_REPLICA_MEMORY_LIMIT'];
    if (limit) process.stderr.write(`bench: every read replica runs in its own memory cgroup of ${limit} (BENCH_REPLICA_MEMORY_LIMIT)\n`);
    for (const b of selected) {
      process.stderr.write(`bench: ${b.name}\n`);
      await b.run(ctx);
    }
  } finally {
    admin.close();
    await system.stop();
  }
  process.stderr.write(`bench: done in ${Math.round((performance.now() - started) / 1000)} s\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
