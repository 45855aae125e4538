/** Scope key of the global scope (global habits only); account scopes use their logical_id (>= 1). */
export const GLOBAL_SCOPE = 0;

/** A WatchVersion subscriber: told the scope's new version after each change. */
export type VersionListener = (version: string) => void;

/**
 * Listeners told per macrotask when a scope has more. Telling a WatchVersion listener writes a
 * message to its stream (~10 µs); the transport sends only once the event loop turns, so telling
 * 10,000 in one go would hold every message back until the last is written. Slices let the first
 * streams' messages leave (and the daemons start work) while the rest are being written.
 */
export const NOTIFY_SLICE = 1024;

/**
 * Per-scope versions, in memory (DESIGN.md "Versions and exports"). The version of a scope is
 * `<epoch>.<revision>` of the last applied feed event that changed what it exports; global habits
 * are in every scope, so an account scope's version is the later of its own and the global one.
 * No clock is involved: deletes and scope exits change versions like any other change.
 */
export class ScopeVersions {
  private epoch = '';
  private readonly revisions = new Map<number, number>();
  private readonly listeners = new Map<number, Set<VersionListener>>();
  /** Scopes whose listeners are being told in slices; `again`: changed since the pass began. */
  private readonly passes = new Map<number, { again: boolean }>();
  /** Version strings already built, by scope: CheckVersion asks far more often than they change. */
  private readonly strings = new Map<number, string>();

  /** Replaces every version (start-up and snapshot rebuild) and tells every listener. */
  reset(epoch: string, revisions: Iterable<[scope: number, revision: number]>): void {
    this.epoch = epoch;
    this.revisions.clear();
    this.strings.clear();
    for (const [scope, revision] of revisions) this.revisions.set(scope, revision);
    for (const scope of this.listeners.keys()) this.notify(scope);
  }

  /** The version of `scope` (GLOBAL_SCOPE or a logical id). */
  version(scope: number): string {
    let version = this.strings.get(scope);
    if (version === undefined) {
      const global = this.revisions.get(GLOBAL_SCOPE) ?? 0;
      const own = scope === GLOBAL_SCOPE ? global : Math.max(global, this.revisions.get(scope) ?? 0);
      version = `${this.epoch}.${own}`;
      // Bounded by the scopes asked about (accounts + global); cleared by every change below.
      this.strings.set(scope, version);
    }
    return version;
  }

  /** Records that the events up to `revision` changed `scopes`, then tells their listeners. */
  bump(scopes: ReadonlyMap<number, number>): void {
    for (const [scope, revision] of scopes) this.revisions.set(scope, revision);
    // A global change moves every scope's version; otherwise only the bumped scopes' do.
    if (scopes.has(GLOBAL_SCOPE)) this.strings.clear();
    else for (const scope of scopes.keys()) this.strings.delete(scope);
    if (scopes.has(GLOBAL_SCOPE)) {
      for (const scope of this.listeners.keys()) this.notify(scope);
      return;
    }
    for (const scope of scopes.keys()) this.notify(scope);
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
      for (const listener of set) listener(version);
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
          next.value(version);
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
