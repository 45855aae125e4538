import { inCohort } from '@titanbot/service-kit/cohort';
import type { Rollout, StepFigures } from '../domain/rollout.js';
import type { Em } from './orm.js';
import { pgArray } from './sql.js';

/** The value at percentile `p` (0..100) of ascending `sorted`, nearest rank; 0 when empty. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * The figures of `rollout`'s current step at `now`, from what replicas reported (device_statuses,
 * their history, and the candidate versions in rollout_versions): the reported devices of its scope
 * split by the step's cohort, how many of the cohort hold their scope's candidate, failed an install
 * since the step began or are offline (no contact for `offlineAfterMs`), and how long the holders took
 * from the step's start. One pass over the scope's statuses (a cohort check is one SHA-256 each).
 */
export async function stepFigures(em: Em, rollout: Rollout, now: Date, offlineAfterMs: number): Promise<StepFigures> {
  const stepStart = new Date(rollout.stepTimes[rollout.currentStep]!.startTime);
  const offlineBefore = now.getTime() - offlineAfterMs;
  const statuses: { device_uuid: string; held_version: string; last_contact_time: Date; candidate: string | null }[] = await em.execute(
    `select s.device_uuid, s.held_version, s.last_contact_time, rv.version as candidate
       from device_statuses s left join rollout_versions rv on rv.rollout_uuid = ? and rv.scope_key = s.scope_key
      where ?::bigint is null or s.scope_key = ?`,
    [rollout.uuid, rollout.accountLogicalId, rollout.accountLogicalId],
  );
  const figures: StepFigures = { cohortSize: 0, holding: 0, installFailures: 0, offline: 0, restSize: 0, restOffline: 0, convergedP50Ms: 0, convergedP99Ms: 0 };
  const cohort: string[] = [];
  const holders = new Set<string>();
  for (const s of statuses) {
    const offline = new Date(s.last_contact_time).getTime() < offlineBefore;
    if (!inCohort(rollout.uuid, rollout.steps, rollout.currentStep, s.device_uuid)) {
      figures.restSize++;
      if (offline) figures.restOffline++;
      continue;
    }
    cohort.push(s.device_uuid);
    figures.cohortSize++;
    if (offline) figures.offline++;
    if (s.candidate !== null && s.held_version === s.candidate) holders.add(s.device_uuid);
  }
  figures.holding = holders.size;
  if (cohort.length === 0) return figures;
  const history: { device_uuid: string; converged: Date | null; failed: boolean }[] = await em.execute(
    `select c.device_uuid, min(c.change_time) filter (where c.held_version = rv.version) as converged, bool_or(c.failure <> 0) as failed
       from device_status_changes c left join rollout_versions rv on rv.rollout_uuid = ? and rv.scope_key = c.scope_key
      where c.change_time >= ? and c.device_uuid = any (?::uuid[])
      group by c.device_uuid`,
    [rollout.uuid, stepStart, pgArray(cohort)],
  );
  const convergedAt = new Map(history.filter((h) => h.converged !== null).map((h) => [h.device_uuid, new Date(h.converged!).getTime()]));
  figures.installFailures = history.filter((h) => h.failed).length;
  // A holder with no change since the step began already held the candidate when it started: zero.
  const times = [...holders].map((d) => Math.max(0, (convergedAt.get(d) ?? stepStart.getTime()) - stepStart.getTime())).sort((a, b) => a - b);
  figures.convergedP50Ms = percentile(times, 50);
  figures.convergedP99Ms = percentile(times, 99);
  return figures;
}
