import type { adminClient } from './fixture.js';
import type { BenchSystem } from './system.js';

/** What every benchmark gets: the running system with the fixture loaded, and a provisioned device. */
export interface BenchContext {
  system: BenchSystem;
  admin: ReturnType<typeof adminClient>;
  /** A device bound to the largest scope's account, with 8 daemon tokens (one per load channel). */
  fleet: { deviceUuid: string; tokens: string[]; logicalId: number };
}

/** A benchmark: runs against the context, prints its table and one final JSON line. */
export interface Benchmark {
  name: string;
  run(ctx: BenchContext): Promise<void>;
}
