import { createHash } from 'node:crypto';
import { GLOBAL_SCOPE } from '@titanbot/service-kit/daemon-database';
import { inCohort, type CohortStep } from '@titanbot/service-kit/cohort';
import { inSpan, traceparentOf, tracerOf, tracingEnabled } from '@titanbot/service-kit/tracing';
import { LtHash } from './lt-hash.js';

const TRACER = tracerOf('read');

/** A WatchVersion subscriber: told its device's new version of the scope after each change. */
export type VersionListener = (version: string, revision: number) => void;

/**
 * A rollout that is running or paused, as the read model holds it (docs/decisions.md "Staged
 * rollouts"): the part its habits are in (GLOBAL_SCOPE: every scope), its steps and current step,
 * and `delta`: its candidate elements minus the stable elements of the habits it changes, so a
 * scope's candidate sum is its stable sum plus `delta`.
 */
export interface ActiveRollout {
  uuid: string;
  part: number;
  steps: readonly CohortStep[];
  currentStep: number;
  delta: LtHash;
  /** Feed revision of its last change (state, step or candidate rows). */
  revision: number;
}

/** An active rollout with what is derived from it: its devices' cohort membership at the current step, its candidate versions by scope. */
interface RolloutEntry {
  rollout: ActiveRollout;
  members: Map<string, boolean>;
  candidates: Map<number, string>;
}

/** What a device gets of a scope: its version, the revision it took it at, and the rollout whose candidate it is (if any). */
export interface DeviceContent {
  version: string;
  revision: number;
  rollout?: string;
}

/**
 * Listeners told per macrotask when a scope has more. Telling a WatchVersion listener writes a
 * message to its stream (~10 µs); the transport sends only once the event loop turns, so telling
 * 10,000 in one go would hold every message back until the last is written. Slices let the first
 * streams' messages leave (and the daemons start work) while the rest are being written.
 */
export const NOTIFY_SLICE = 1024;

/**
 * Per-scope versions, in memory: a version names a scope's content. The read model keeps an LtHash
 * sum of the exported habits' elements per part (the global habits, and each logical id's own);
 * an account scope's content is the global part plus its own. Its version is the first 128 bits
 * of SHA-256(format, scope, sum), so it is equal on every replica holding the same content however
 * it got there (following the feed, restarted, rebuilt from a snapshot), differs between scopes
 * and between export formats, and stays the same across writes that change nothing exported.
 * Computed once per change and cached: CheckVersion is a map lookup.
 */
export class ScopeVersions {
  private global = new LtHash();
  private parts = new Map<number, LtHash>();
  /** Feed revision of the last change to the global part, and to each account part. */
  private globalRevision = 0;
  private readonly partRevisions = new Map<number, number>();
  /** Per scope, each listener with the device it serves. */
  private readonly listeners = new Map<number, Map<VersionListener, string>>();
  /**
   * Running and paused rollouts (their scopes do not overlap: the write service allows one per
   * scope), each with its devices' cohort membership at the current step and its candidate version
   * strings by scope (cleared with `strings`).
   */
  private rollouts: readonly RolloutEntry[] = [];
  /** Scopes whose listeners are being told in slices; `again`: changed since the pass began. */
  private readonly passes = new Map<number, { again: boolean }>();
  /** Version strings already built, by scope: CheckVersion asks far more often than they change. */
  private readonly strings = new Map<number, string>();
  /** With tracing on: the `traceparent` of the feed transaction that last changed the global part, and each account part. */
  private globalTrace = '';
  private readonly partTraces = new Map<number, string>();

  /** @param format names the export format: everything besides the rows that changes a file's bytes. */
  constructor(private readonly format: string) {}

  /** Replaces every sum (start-up and snapshot rebuild, at feed `revision`) and tells every listener. */
  reset(global: LtHash, parts: Map<number, LtHash>, revision: number): void {
    this.global = global;
    this.parts = parts;
    this.globalRevision = revision;
    this.partRevisions.clear();
    this.strings.clear();
    for (const r of this.rollouts) r.candidates.clear();
    for (const scope of this.listeners.keys()) this.notify(scope);
  }

  /**
   * Replaces the active rollouts (start-up, snapshot, and every feed transaction that touched a
   * rollout) without telling anyone: `apply` or `reset`, which follow, tell the scopes they changed.
   * Returns the parts whose rollout changed (GLOBAL_SCOPE: every scope).
   */
  setRollouts(rollouts: readonly ActiveRollout[]): number[] {
    const before = new Map(this.rollouts.map(({ rollout: r }) => [r.uuid, r]));
    const changed = new Set<number>();
    for (const r of rollouts) {
      const was = before.get(r.uuid);
      if (!was || was.revision !== r.revision) changed.add(r.part);
      before.delete(r.uuid);
    }
    for (const gone of before.values()) changed.add(gone.part);
    this.rollouts = rollouts.map((rollout) => ({ rollout, members: new Map(), candidates: new Map() }));
    return [...changed];
  }

  /** The running and paused rollouts. */
  get activeRollouts(): readonly ActiveRollout[] {
    return this.rollouts.map((r) => r.rollout);
  }

  /**
   * What `device` gets of `scope`: the candidate of the rollout affecting the scope while the
   * device is in the cohort of its current step, else the stable version. O(1): a cohort check is
   * one SHA-256 the first time per device and step, then a map lookup.
   */
  contentFor(scope: number, device: string): DeviceContent {
    const active = this.rolloutOf(scope);
    if (!active || !this.isMember(active, device)) return { version: this.version(scope), revision: this.revision(scope) };
    return { version: this.candidateVersion(scope, active), revision: Math.max(this.revision(scope), active.rollout.revision), rollout: active.rollout.uuid };
  }

  /** The candidate version of `scope` for the rollout affecting it, if one does (what its cohort devices get). */
  candidateOf(scope: number): { rollout: string; version: string } | undefined {
    const active = this.rolloutOf(scope);
    return active && { rollout: active.rollout.uuid, version: this.candidateVersion(scope, active) };
  }

  private candidateVersion(scope: number, active: RolloutEntry): string {
    let version = active.candidates.get(scope);
    if (version === undefined) {
      version = this.name(scope, this.sumOf(scope).clone().add(active.rollout.delta.lanes));
      active.candidates.set(scope, version);
    }
    return version;
  }

  private rolloutOf(scope: number): RolloutEntry | undefined {
    for (const r of this.rollouts) if (r.rollout.part === GLOBAL_SCOPE || r.rollout.part === scope) return r;
    return undefined;
  }

  private isMember({ rollout, members }: RolloutEntry, device: string): boolean {
    let member = members.get(device);
    if (member === undefined) members.set(device, (member = inCohort(rollout.uuid, rollout.steps, rollout.currentStep, device)));
    return member;
  }

  /** `scope`'s stable sum: the global part, plus an account scope's own (a new sum, but for the global scope). */
  private sumOf(scope: number): LtHash {
    return scope === GLOBAL_SCOPE ? this.global : this.global.clone().add((this.parts.get(scope) ?? EMPTY).lanes);
  }

  /** The version naming `sum` as `scope`'s content: the same function for stable and candidate content. */
  private name(scope: number, sum: LtHash): string {
    const name = scope === GLOBAL_SCOPE ? 'global' : `account:${scope}`;
    return createHash('sha256').update(`${this.format}\0${name}\0`).update(sum.bytes()).digest('hex').slice(0, 32);
  }

  /** The version of `scope` (GLOBAL_SCOPE or a logical id). */
  version(scope: number): string {
    let version = this.strings.get(scope);
    if (version === undefined) {
      version = this.name(scope, this.sumOf(scope));
      // Bounded by the scopes asked about (accounts + global); cleared by every change below.
      this.strings.set(scope, version);
    }
    return version;
  }

  /** The feed revision at which `scope` took its current version (observability only). */
  revision(scope: number): number {
    return scope === GLOBAL_SCOPE ? this.globalRevision : Math.max(this.globalRevision, this.partRevisions.get(scope) ?? 0);
  }

  /**
   * With tracing on, the `traceparent` of the change that gave `scope` its current version (the
   * replica's feed.apply span of it), so an export build or download can link to it; '' otherwise.
   */
  changeTraceparent(scope: number): string {
    if (scope === GLOBAL_SCOPE) return this.globalTrace;
    return (this.partRevisions.get(scope) ?? 0) > this.globalRevision ? (this.partTraces.get(scope) ?? '') : this.globalTrace;
  }

  /**
   * Adds the committed changes of one feed transaction (ending at `revision`), by part (GLOBAL_SCOPE or a logical id: new
   * elements minus old), then tells the listeners of every scope whose content changed (in a
   * `watchers.notify` span when tracing is on). A part whose change sums to zero (a write that
   * changed nothing exported) changes no version. `rolloutParts`: parts whose rollout changed
   * (setRollouts), told as well.
   */
  apply(deltas: ReadonlyMap<number, LtHash>, revision: number, rolloutParts: readonly number[] = []): void {
    const changed: number[] = [...rolloutParts];
    const traced = tracingEnabled();
    const traceparent = traced ? traceparentOf() : '';
    for (const [part, delta] of deltas) {
      if (delta.isZero()) continue;
      if (!changed.includes(part)) changed.push(part);
      if (part === GLOBAL_SCOPE) {
        this.global.add(delta.lanes);
        this.globalRevision = revision;
        if (traced) this.globalTrace = traceparent;
      } else {
        this.partRevisions.set(part, revision);
        if (traced) this.partTraces.set(part, traceparent);
        let sum = this.parts.get(part);
        if (!sum) this.parts.set(part, (sum = new LtHash()));
        sum.add(delta.lanes);
        if (sum.isZero()) this.parts.delete(part);
      }
    }
    if (changed.length === 0) return;
    const announce = (): void => {
      // A global change moves every scope's version; otherwise only the changed scopes' do.
      for (const r of this.rollouts) r.candidates.clear();
      if (changed.includes(GLOBAL_SCOPE)) {
        this.strings.clear();
        for (const scope of this.listeners.keys()) this.notify(scope);
        return;
      }
      for (const scope of changed) {
        this.strings.delete(scope);
        this.notify(scope);
      }
    };
    if (traced) inSpan(TRACER, 'watchers.notify', (span) => (span.setAttribute('titanbot.watchers', this.listenerCount), announce()));
    else announce();
  }

  /** Registers `listener` for what `device` gets of `scope`; returns the function that removes it. */
  listen(scope: number, device: string, listener: VersionListener): () => void {
    let set = this.listeners.get(scope);
    if (!set) this.listeners.set(scope, (set = new Map()));
    set.set(listener, device);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(scope) === set) this.listeners.delete(scope);
    };
  }

  /** Number of registered listeners (active WatchVersion streams). */
  get listenerCount(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }

  /**
   * Tells `scope`'s listeners their device's version (without a rollout in the scope, the same for
   * all): at once when there are at most NOTIFY_SLICE, else in slices, one per macrotask, each
   * telling the version current when it runs (so a listener never goes back to an older one). A
   * change during a pass marks it; the pass then starts over once
   * (those already told get the newer version; the rest get it on the way), so no listener starves
   * however often the scope changes.
   */
  private notify(scope: number): void {
    const set = this.listeners.get(scope);
    if (!set) return;
    const running = this.passes.get(scope);
    if (running) {
      running.again = true;
      return;
    }
    const tell = this.teller(scope);
    if (set.size <= NOTIFY_SLICE) {
      for (const [listener, device] of set) tell(listener, device);
      return;
    }
    const pass = { again: false };
    this.passes.set(scope, pass);
    // Map iterators are live: listeners removed meanwhile are skipped, ones added are told too.
    let listeners = set.entries();
    const slice = (): void => {
      let done = true;
      try {
        const tell = this.teller(scope);
        for (let told = 0; told < NOTIFY_SLICE; told++) {
          const next = listeners.next();
          if (next.done) {
            const current = this.listeners.get(scope);
            if (!pass.again || !current) return;
            pass.again = false;
            listeners = current.entries();
            done = false;
            return void setImmediate(slice);
          }
          tell(next.value[0], next.value[1]);
        }
        done = false;
        setImmediate(slice);
      } finally {
        if (done) this.passes.delete(scope);
      }
    };
    slice();
  }

  /** How to tell a listener of `scope` now: the stable version for all, or each device its own while a rollout is in the scope. */
  private teller(scope: number): (listener: VersionListener, device: string) => void {
    if (!this.rolloutOf(scope)) {
      const version = this.version(scope);
      const revision = this.revision(scope);
      return (listener) => listener(version, revision);
    }
    return (listener, device) => {
      const content = this.contentFor(scope, device);
      listener(content.version, content.revision);
    };
  }
}

const EMPTY = new LtHash();
