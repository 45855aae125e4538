import { createHash } from 'node:crypto';
import { inSpan, traceparentOf, tracerOf, tracingEnabled } from '@titanbot/service-kit/tracing';
import { LtHash } from './lt-hash.js';

/**
 * Scope key of the global scope (global habits only). Account scopes use their logical id, an
 * int32; this key is outside that range, so a habit of logical id 0 is an account habit like any.
 */
export const GLOBAL_SCOPE = 2 ** 32;

const TRACER = tracerOf('read');

/** A WatchVersion subscriber: told the scope's new version after each change. */
export type VersionListener = (version: string, revision: number) => void;

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
  private readonly listeners = new Map<number, Set<VersionListener>>();
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
    for (const scope of this.listeners.keys()) this.notify(scope);
  }

  /** The version of `scope` (GLOBAL_SCOPE or a logical id). */
  version(scope: number): string {
    let version = this.strings.get(scope);
    if (version === undefined) {
      const sum = scope === GLOBAL_SCOPE ? this.global : this.global.clone().add((this.parts.get(scope) ?? EMPTY).lanes);
      const name = scope === GLOBAL_SCOPE ? 'global' : `account:${scope}`;
      version = createHash('sha256').update(`${this.format}\0${name}\0`).update(sum.bytes()).digest('hex').slice(0, 32);
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
   * changed nothing exported) changes no version.
   */
  apply(deltas: ReadonlyMap<number, LtHash>, revision: number): void {
    const changed: number[] = [];
    const traced = tracingEnabled();
    const traceparent = traced ? traceparentOf() : '';
    for (const [part, delta] of deltas) {
      if (delta.isZero()) continue;
      changed.push(part);
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

  /** Registers `listener` for `scope`; returns the function that removes it. */
  listen(scope: number, listener: VersionListener): () => void {
    let set = this.listeners.get(scope);
    if (!set) this.listeners.set(scope, (set = new Set()));
    set.add(listener);
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
   * Tells `scope`'s listeners its version: at once when there are at most NOTIFY_SLICE, else in
   * slices, one per macrotask, each telling the version current when it runs (so a listener never
   * goes back to an older one). A change during a pass marks it; the pass then starts over once
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
    if (set.size <= NOTIFY_SLICE) {
      const version = this.version(scope);
      const revision = this.revision(scope);
      for (const listener of set) listener(version, revision);
      return;
    }
    const pass = { again: false };
    this.passes.set(scope, pass);
    // Set iterators are live: listeners removed meanwhile are skipped, ones added are told too.
    let listeners = set.values();
    const slice = (): void => {
      let done = true;
      try {
        const version = this.version(scope);
        const revision = this.revision(scope);
        for (let told = 0; told < NOTIFY_SLICE; told++) {
          const next = listeners.next();
          if (next.done) {
            const current = this.listeners.get(scope);
            if (!pass.again || !current) return;
            pass.again = false;
            listeners = current.values();
            done = false;
            return void setImmediate(slice);
          }
          next.value(version, revision);
        }
        done = false;
        setImmediate(slice);
      } finally {
        if (done) this.passes.delete(scope);
      }
    };
    slice();
  }
}

const EMPTY = new LtHash();
