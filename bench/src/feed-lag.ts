import type { Benchmark, BenchContext } from './lib/context.js';
import { cpuSeconds } from './lib/proc.js';
import { printJson, printTable } from './lib/report.js';
import { percentile, round } from './lib/stats.js';
import { forkLoad, nextMessage, profileEnv, stopLoad } from './watch-fanout.js';

const RATE = 200;
const SECONDS = 30;
const HABITS = 20;
const WARM_UP_WRITES = 50;
const MAX_IN_FLIGHT = 16;
const TARGETS = { p99Ms: 50 } as const;

interface Mark {
  type: 'mark';
  watched: number;
  polled: number;
}
interface Result {
  type: 'result';
  watched: [number, number][];
  polled: [number, number][];
  polls: number;
  cpuMs: number;
}

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Time at which each of `revisions` (ascending) was first reached in `seen` ([revision, time][],
 * revisions ascending): a version message or poll answer for a later revision covers the earlier
 * ones it skipped. NaN where never reached.
 */
function reachedAt(revisions: readonly number[], seen: readonly [number, number][]): number[] {
  const out: number[] = [];
  let j = 0;
  for (const revision of revisions) {
    while (j < seen.length && seen[j]![0] < revision) j++;
    out.push(j < seen.length ? seen[j]![1] : Number.NaN);
  }
  return out;
}

/**
 * Benchmark 4: admin writes (UpdateHabit of a global habit) at 200 per second for 30 s, started
 * on a 5 ms timer grid (open loop, at most MAX_IN_FLIGHT outstanding); for each revision, the time
 * from its commit (taken as the moment the k-th call returns, see below) to (a) the revision being
 * visible on a dedicated read replica, seen by a CheckVersion poller (~1 call per ms) and (b) a
 * watching daemon's WatchVersion message; both in a separate load process. Every write is one
 * feed revision (checked before and after).
 */
export const feedLag: Benchmark = {
  name: 'feed-lag',
  async run(ctx: BenchContext): Promise<void> {
    const habits: string[] = [];
    for (let i = 0; i < HABITS; i++) habits.push(await ctx.admin.createGlobalHabit(`bench feed-lag ${i}`));
    const replica = await ctx.system.startReplica(profileEnv());
    const watcher = forkLoad('feed-lag-watcher.js', [replica.address, ctx.fleet.tokens[0]!, String(ctx.fleet.logicalId)]);
    try {
      await nextMessage(watcher, 'ready', 30_000);
      const mark = async (): Promise<Mark> => {
        const m = nextMessage<Mark>(watcher, 'mark', 5_000);
        watcher.send({ type: 'mark' });
        return m;
      };
      // Warm-up (JIT, connections), then learn how many revisions one write makes.
      for (let i = 0; i < WARM_UP_WRITES; i++) {
        await ctx.admin.touchHabit(habits[i % HABITS]!, `warm-up ${i}`);
        await sleep(2);
      }
      await sleep(300);
      const before = await mark();
      await ctx.admin.touchHabit(habits[0]!, 'probe');
      await sleep(300);
      const after = await mark();
      const perWrite = after.watched - before.watched;
      if (perWrite !== 1 || after.polled !== after.watched) throw new Error(`one write made ${perWrite} revisions (polled ${after.polled}, watched ${after.watched})`);
      const start = after.watched;

      const total = RATE * SECONDS;
      const periodMs = 1000 / RATE;
      const started: number[] = [];
      const completed: number[] = [];
      const callDurations: number[] = [];
      const cpu0 = { replica: await cpuSeconds(replica.pid), write: await cpuSeconds(ctx.system.write.pid) };
      // Open loop on a 5 ms grid, at most MAX_IN_FLIGHT writes outstanding (a write waiting for a slot starts late).
      const inFlight = new Set<Promise<unknown>>();
      const t0 = now() + 10;
      let late = 0;
      for (let i = 0; i < total; i++) {
        const due = t0 + i * periodMs;
        const wait = due - now();
        if (wait >= 1) await sleep(wait);
        while (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
        if (now() - due > periodMs) late++;
        started.push(now());
        const begun = now();
        const write: Promise<unknown> = ctx.admin.touchHabit(habits[i % HABITS]!, `lag ${i}`).then(() => {
          completed.push(now());
          callDurations.push(now() - begun);
          inFlight.delete(write);
        });
        inFlight.add(write);
      }
      await Promise.all(inFlight);
      const elapsedS = (Math.max(...completed) - started[0]!) / 1000;
      const cpu = { replica: (await cpuSeconds(replica.pid)) - cpu0.replica, write: (await cpuSeconds(ctx.system.write.pid)) - cpu0.write };
      await sleep(500);
      const end = await mark();
      const result = nextMessage<Result>(watcher, 'result', 10_000);
      watcher.send({ type: 'collect' });
      const { watched, polled, polls, cpuMs } = await result;
      if (end.watched !== start + total) throw new Error(`expected revision ${start + total} after the writes, the watcher saw ${end.watched}`);

      // Revisions are gapless and in commit order, and a call returns after its commit: when the
      // k-th call returns, revisions start+1..start+k are committed. So the k-th return is taken as
      // the commit time of revision start+k (and the k-th call start as a lower bound for it).
      const committed = Float64Array.from(completed).sort();
      const starts = Float64Array.from(started).sort();
      const revisions = Array.from({ length: total }, (_v, i) => start + i + 1);
      const appliedAt = reachedAt(revisions, polled);
      const notifiedAt = reachedAt(revisions, watched);
      const applied = appliedAt.map((t, i) => t - committed[i]!);
      const notified = notifiedAt.map((t, i) => t - committed[i]!);
      const appliedFromStart = appliedAt.map((t, i) => t - starts[i]!);
      const notifiedFromStart = notifiedAt.map((t, i) => t - starts[i]!);
      const callMs = callDurations;
      const writesPerSecond = round(total / elapsedS, 1);
      const fig = (v: number[]): { p50: number; p99: number; max: number } => ({ p50: round(percentile(v, 50)), p99: round(percentile(v, 99)), max: round(Math.max(...v)) });
      const a = fig(applied);
      const n = fig(notified);
      printTable(
        `feed-lag: ${total} admin writes (UpdateHabit of one of ${HABITS} global habits) at ${writesPerSecond}/s for ${round(elapsedS, 1)} s (target ${RATE}/s open loop, <= ${MAX_IN_FLIGHT} in flight, ${late} started > 1 period late); ms`,
        [
          { figure: 'commit -> applied on the replica (1)', ...fig(applied), target: `p99 < ${TARGETS.p99Ms}` },
          { figure: 'commit -> watching daemon notified (2)', ...fig(notified), target: `p99 < ${TARGETS.p99Ms}` },
          { figure: 'call start -> applied (upper bound)', ...fig(appliedFromStart), target: '' },
          { figure: 'call start -> notified (upper bound)', ...fig(notifiedFromStart), target: '' },
          { figure: 'UpdateHabit call (admin client)', ...fig(callMs), target: '' },
        ],
      );
      process.stdout.write(
        `  commit of revision start+k = the moment the k-th UpdateHabit call returns to the writer (revisions are gapless in commit order and a call returns after its commit), so the lag is a lower bound; the "call start" rows (k-th call start) give an upper bound.\n` +
          `  (1) applied = the first CheckVersion answer showing the revision, from a poller in a separate process (one call in flight, ` +
          `next ~1 ms after each answer: ${polls} polls, resolution about ${round((elapsedS * 1000) / Math.max(1, polls), 2)} ms, ` +
          `so up to that much late). (2) the WatchVersion message's arrival at a watching daemon (same load process).\n` +
          `  CPU during the writes: read replica ${round(cpu.replica, 2)} s, write service ${round(cpu.write, 2)} s, load process ${round(cpuMs / 1000, 2)} s.\n`,
      );
      printJson('feed-lag', {
        writesPerSecond,
        seconds: round(elapsedS, 1),
        writes: total,
        appliedP50Ms: a.p50,
        appliedP99Ms: a.p99,
        notifiedP50Ms: n.p50,
        notifiedP99Ms: n.p99,
        appliedMethod: 'CheckVersion poller ~1/ms, first answer showing the revision',
        targets: { appliedP99Ms: `< ${TARGETS.p99Ms}`, notifiedP99Ms: `< ${TARGETS.p99Ms}` },
        met: { appliedP99Ms: a.p99 < TARGETS.p99Ms, notifiedP99Ms: n.p99 < TARGETS.p99Ms },
      });
    } finally {
      await stopLoad(watcher);
      await replica.stop();
    }
  },
};
