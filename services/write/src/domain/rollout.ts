import { DomainError, Violations } from './errors.js';

export const ROLLOUT_STATES = ['created', 'running', 'paused', 'completed', 'aborted'] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];
/** States in which a rollout holds its habits and its scope. */
export const OPEN_ROLLOUT_STATES: readonly RolloutState[] = ['created', 'running', 'paused'];

/** Limits of a rollout (rollout_service.proto). */
export const MAX_CHANGES = 100;
export const MAX_STEPS = 20;
export const MAX_NAMED_DEVICES = 1000;
export const MAX_STEP_DURATION_MS = 30 * 24 * 3600 * 1000;

export interface RolloutStep {
  /** 0..100, at most four decimals. */
  percent: number;
  /** Lower-case device uuids in the cohort from this step on. */
  deviceUuids: string[];
  /** Milliseconds the step is held at least. */
  minDurationMs: number;
}

/** Health checks of a running step (rollout_service.proto RolloutGates). */
export interface RolloutGates {
  maxInstallFailures: number;
  minCohortSize: number;
  onFailure: 'pause' | 'abort';
  autoAdvance: boolean;
}

/** The fleet's figures for one step (rollout_service.proto RolloutStepFigures); durations in ms. */
export interface StepFigures {
  cohortSize: number;
  holding: number;
  installFailures: number;
  offline: number;
  restSize: number;
  restOffline: number;
  convergedP50Ms: number;
  convergedP99Ms: number;
}

/** When a step began and ended, as ISO-8601 strings, and its figures when it ended (stored as JSON). */
export interface StepTimes {
  startTime: string;
  endTime?: string;
  figures?: StepFigures;
}

/**
 * A staged rollout of habit changes (docs/decisions.md "Staged rollouts"): created with a change
 * set, started with steps, moved through them by AdvanceRollout, held by PauseRollout, ended by
 * completing past the last step or by AbortRollout. `changes` is the change set as the client gave
 * it (shown back, never interpreted here); `habitUuids` the habits it changes. The candidate rows
 * are kept by db/rollout-candidates.ts. Invariants: `currentStep` indexes `steps` once started;
 * step percents do not decrease and the last is 100; an ended rollout never changes again.
 */
export class Rollout {
  readonly uuid!: string;
  readonly description!: string;
  state!: RolloutState;
  /** Null = the global habits (every scope). */
  readonly accountLogicalId!: number | null;
  readonly changes!: unknown[];
  readonly habitUuids!: string[];
  steps!: RolloutStep[];
  stepTimes!: StepTimes[];
  currentStep!: number;
  gates!: RolloutGates | null;
  /** Why a gate paused or aborted it; '' when an operator did. */
  stateReason!: string;
  readonly createTime!: Date;
  updateTime!: Date;
  readonly version!: number;

  static create(uuid: string, description: string, accountLogicalId: number | null, changes: unknown[], habitUuids: string[], now: Date): Rollout {
    return Object.assign(new Rollout(), {
      uuid,
      description,
      state: 'created' as const,
      accountLogicalId,
      changes,
      habitUuids,
      steps: [],
      stepTimes: [],
      currentStep: 0,
      gates: null,
      stateReason: '',
      createTime: now,
      updateTime: now,
      version: 1,
    });
  }

  /** CREATED -> RUNNING at step 0, with `gates` (null: none). Errors: INVALID_ARGUMENT (steps, gates), ROLLOUT_STATE_MISMATCH. */
  start(steps: RolloutStep[], gates: RolloutGates | null, now: Date): void {
    this.expectState('StartRollout', ['created']);
    validateSteps(steps, gates);
    this.steps = steps;
    this.gates = gates;
    this.stepTimes = [{ startTime: now.toISOString() }];
    this.currentStep = 0;
    this.moved('running', now);
  }

  /** When the current step will have been held for its min duration (ms since the epoch). */
  stepDueMs(): number {
    return Date.parse(this.stepTimes[this.currentStep]!.startTime) + this.steps[this.currentStep]!.minDurationMs;
  }

  /**
   * RUNNING or PAUSED -> the next step (RUNNING), or past the last one -> COMPLETED; returns
   * which. `figures`: the step's as it ends, kept with it. Errors: ROLLOUT_STATE_MISMATCH,
   * ROLLOUT_STEP_NOT_DUE (the step's min duration has not passed).
   */
  advance(now: Date, figures: StepFigures | undefined): 'advanced' | 'completed' {
    this.expectState('AdvanceRollout', ['running', 'paused']);
    if (now.getTime() < this.stepDueMs()) {
      throw new DomainError('ROLLOUT_STEP_NOT_DUE', `step ${this.currentStep} is held until ${new Date(this.stepDueMs()).toISOString()} (min_duration)`);
    }
    this.endStep(now, figures);
    this.stateReason = '';
    if (this.currentStep === this.steps.length - 1) {
      this.moved('completed', now);
      return 'completed';
    }
    this.currentStep++;
    this.stepTimes = [...this.stepTimes, { startTime: now.toISOString() }];
    this.moved('running', now);
    return 'advanced';
  }

  /** RUNNING -> PAUSED; `reason`: the failed gate, '' when an operator paused it. Errors: ROLLOUT_STATE_MISMATCH. */
  pause(now: Date, reason = ''): void {
    this.expectState('PauseRollout', ['running']);
    this.stateReason = reason;
    this.moved('paused', now);
  }

  /**
   * Any open state -> ABORTED; `figures`: the current step's as it ends (a started rollout);
   * `reason`: the failed gate, '' when an operator aborted it. Errors: ROLLOUT_STATE_MISMATCH.
   */
  abort(now: Date, figures: StepFigures | undefined, reason = ''): void {
    this.expectState('AbortRollout', OPEN_ROLLOUT_STATES);
    if (this.state !== 'created') this.endStep(now, figures);
    this.stateReason = reason;
    this.moved('aborted', now);
  }

  private endStep(now: Date, figures: StepFigures | undefined): void {
    this.stepTimes = this.stepTimes.map((t, i) => (i === this.currentStep ? { ...t, endTime: now.toISOString(), ...(figures ? { figures } : {}) } : t));
  }

  private moved(state: RolloutState, now: Date): void {
    this.state = state;
    this.updateTime = now;
  }

  private expectState(call: string, allowed: readonly RolloutState[]): void {
    if (!allowed.includes(this.state)) {
      throw new DomainError('ROLLOUT_STATE_MISMATCH', `${call} applies to a rollout that is ${allowed.join(' or ')}; rollout ${this.uuid} is ${this.state}`);
    }
  }
}

/**
 * The gate `figures` fail, as the reason a rollout is paused or aborted, or undefined when every gate
 * passes: more install failures in the cohort than tolerated, or (with at least `minCohortSize`
 * cohort devices and one other) a larger share of the cohort offline than of the rest.
 */
export function failedGate(gates: RolloutGates, figures: StepFigures): string | undefined {
  if (figures.installFailures > gates.maxInstallFailures) {
    return `${figures.installFailures} install failures in the cohort since the step began, at most ${gates.maxInstallFailures}`;
  }
  const checked = figures.cohortSize >= Math.max(1, gates.minCohortSize) && figures.restSize > 0;
  if (checked && figures.offline / figures.cohortSize > figures.restOffline / figures.restSize) {
    return `${figures.offline} of ${figures.cohortSize} cohort devices offline, more than the rest's ${figures.restOffline} of ${figures.restSize}`;
  }
  return undefined;
}

/** Steps and gates as rollout_service.proto states them; every violation at once. Errors: INVALID_ARGUMENT. */
export function validateSteps(steps: RolloutStep[], gates: RolloutGates | null): void {
  const v = new Violations();
  if (gates) {
    v.check(Number.isInteger(gates.maxInstallFailures) && gates.maxInstallFailures >= 0, 'gates.max_install_failures', 'must be >= 0')
      .check(Number.isInteger(gates.minCohortSize) && gates.minCohortSize >= 0, 'gates.min_cohort_size', 'must be >= 0');
  }
  v.check(steps.length >= 1 && steps.length <= MAX_STEPS, 'steps', `must be 1..${MAX_STEPS} steps`);
  let named = 0;
  steps.forEach((s, i) => {
    const at = `steps[${i}]`;
    v.check(Number.isFinite(s.percent) && s.percent >= 0 && s.percent <= 100, `${at}.percent`, 'must be 0..100')
      .check(Math.abs(s.percent * 10_000 - Math.round(s.percent * 10_000)) < 1e-6, `${at}.percent`, 'must have at most four decimals')
      .check(i === 0 || s.percent >= steps[i - 1]!.percent, `${at}.percent`, 'must not be below the step before')
      .check(s.minDurationMs >= 0 && s.minDurationMs <= MAX_STEP_DURATION_MS, `${at}.min_duration`, 'must be 0..30 days');
    named += s.deviceUuids.length;
  });
  v.check(steps.length === 0 || steps[steps.length - 1]!.percent === 100, `steps[${steps.length - 1}].percent`, 'the last step must be 100 (a rollout ends with every device)');
  v.check(named <= MAX_NAMED_DEVICES, 'steps', `at most ${MAX_NAMED_DEVICES} named devices in all`);
  v.throwIfAny();
}
