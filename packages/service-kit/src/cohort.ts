import { createHash } from 'node:crypto';

/** Places a device can have in a rollout: a step of `percent` takes places below percent × PLACES / 100. */
export const COHORT_PLACES = 1_000_000;

/**
 * A device's place in a rollout, in [0, COHORT_PLACES): the first 32 bits of
 * SHA-256("<rollout uuid>/<device uuid>") modulo COHORT_PLACES (lower-case uuids). A function of
 * the two alone, so the write service and every replica agree on it without asking each other, a
 * device keeps its place through every step of a rollout, and one rollout's cohort says nothing
 * about another's (docs/decisions.md "Staged rollouts").
 */
export function cohortPlace(rolloutUuid: string, deviceUuid: string): number {
  return createHash('sha256').update(`${rolloutUuid.toLowerCase()}/${deviceUuid.toLowerCase()}`).digest().readUInt32BE(0) % COHORT_PLACES;
}

/** The places a step of `percent` (0..100) takes: those below this bound. */
export const cohortBound = (percent: number): number => Math.round((percent * COHORT_PLACES) / 100);

/** A rollout step as both services read it: percent of the scope's devices, plus named devices (canaries). */
export interface CohortStep {
  percent: number;
  deviceUuids: readonly string[];
}

/**
 * Whether `deviceUuid` is in the cohort of step `current` of `steps`: its place is below the
 * step's bound, or some step up to `current` names it. Percents do not decrease and named devices
 * accumulate, so a device in one step's cohort is in every later one's.
 */
export function inCohort(rolloutUuid: string, steps: readonly CohortStep[], current: number, deviceUuid: string): boolean {
  const step = steps[current];
  if (!step) return false;
  if (cohortPlace(rolloutUuid, deviceUuid) < cohortBound(step.percent)) return true;
  const device = deviceUuid.toLowerCase();
  return steps.slice(0, current + 1).some((s) => s.deviceUuids.some((d) => d.toLowerCase() === device));
}
