/** Scope key of the global scope (global habits only); account scopes use their logical_id (>= 1). */
export const GLOBAL_SCOPE = 0;

/** A WatchVersion subscriber: told the scope's new version after each change. */
export type VersionListener = (version: string) => void;

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

  /** Replaces every version (start-up and snapshot rebuild) and tells every listener. */
  reset(epoch: string, revisions: Iterable<[scope: number, revision: number]>): void {
    this.epoch = epoch;
    this.revisions.clear();
    for (const [scope, revision] of revisions) this.revisions.set(scope, revision);
    for (const scope of this.listeners.keys()) this.notify(scope);
  }

  /** The version of `scope` (GLOBAL_SCOPE or a logical id). */
  version(scope: number): string {
    const global = this.revisions.get(GLOBAL_SCOPE) ?? 0;
    const own = scope === GLOBAL_SCOPE ? global : Math.max(global, this.revisions.get(scope) ?? 0);
    return `${this.epoch}.${own}`;
  }

  /** Records that the events up to `revision` changed `scopes`, then tells their listeners. */
  bump(scopes: ReadonlyMap<number, number>): void {
    for (const [scope, revision] of scopes) this.revisions.set(scope, revision);
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

  private notify(scope: number): void {
    const set = this.listeners.get(scope);
    if (!set) return;
    const version = this.version(scope);
    for (const listener of set) listener(version);
  }
}
