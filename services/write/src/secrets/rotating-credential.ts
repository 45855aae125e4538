import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { CasConflictError, type SecretStore } from '@titanbot/service-kit/secrets/secret-store';

/** verify() misses refresh from the store at most this often, so garbage keys cannot hammer it. */
const MIN_REFRESH_GAP_MS = 1_000;
/** Upper bound on the period of the scheduled-rotation check, so a due rotation happens within a minute. */
const MAX_ROTATION_CHECK_MS = 60_000;

export interface RotatingCredentialOptions {
  store: SecretStore;
  /** Secret name in the store, e.g. `admin-token`. */
  name: string;
  /** Initial value when the store holds none yet (e.g. from the environment); otherwise `generate()`. Must not be empty. */
  bootstrapValue?: string;
  /** Makes a fresh random credential value. */
  generate: () => string;
  /** How long the replaced value stays valid after rotate(), in milliseconds. */
  graceMs: number;
  /** Period of the background refresh started by start(), in milliseconds. */
  refreshIntervalMs: number;
  logger: Logger;
  /** Clock in epoch milliseconds; injectable for tests. */
  now?: () => number;
}

/** What the cache holds: the stored version and SHA-256 digests of the accepted values. */
interface Snapshot {
  version: number;
  current: string;
  currentDigest: Buffer;
  previousDigest: Buffer | null;
  /** Epoch ms; the previous value is accepted while now < this. */
  previousValidUntil: number;
  /** Epoch ms at which this version was written (its `rotateTime`). */
  rotatedAt: number;
}

/**
 * The cached view of one credential stored as `{ current, rotateTime, previous?, previousValidUntil? }` (ISO
 * times) in a SecretStore. Checks are answered from the cache; every replica converges through periodic and
 * on-miss refreshes, and rotations race safely through the store's check-and-set. Values are never logged.
 *
 * A version without `rotateTime` (written before it was recorded) counts as written when this replica first
 * loaded it, so upgrading does not trigger a rotation at once; the first rotation then records the time.
 */
export class RotatingCredential {
  private readonly now: () => number;
  private readonly log: Logger;
  private snapshot: Snapshot | null = null;
  private inflight: Promise<void> | null = null;
  private lastRefreshAt = -Infinity;
  private timer: NodeJS.Timeout | null = null;
  private rotationTimer: NodeJS.Timeout | null = null;
  private rotationCheck: Promise<void> | null = null;

  constructor(private readonly options: RotatingCredentialOptions) {
    if (options.bootstrapValue === '') throw new Error(`${options.name}: bootstrap value must not be empty`);
    this.now = options.now ?? Date.now;
    this.log = options.logger.child({ credential: options.name, location: options.store.describe(options.name) });
  }

  /**
   * Loads the credential, bootstrapping it (version 1) when the store holds none. A replica that loses the
   * bootstrap race adopts the winner's value. Throws SecretStoreUnavailableError when the store is unreachable.
   */
  async init(): Promise<void> {
    const { store, name, bootstrapValue, generate } = this.options;
    const existing = await store.read(name);
    if (existing) {
      this.apply(existing);
      this.log.info({ version: existing.version, bootstrapValueIgnored: bootstrapValue !== undefined }, 'credential loaded');
      return;
    }
    const data = { current: bootstrapValue ?? generate(), rotateTime: new Date(this.now()).toISOString() };
    try {
      const version = await store.write(name, data, 0);
      this.apply({ data, version });
      this.log.info({ version, source: bootstrapValue === undefined ? 'generated' : 'environment' }, 'credential bootstrapped');
    } catch (err) {
      if (!(err instanceof CasConflictError)) throw err;
      const winner = await store.read(name);
      if (!winner) throw new Error(`${name}: bootstrap conflicted but the store holds no value`, { cause: err });
      this.apply(winner);
      this.log.info({ version: winner.version }, 'credential loaded (another replica bootstrapped it)');
    }
  }

  /** The current value (after init()), for a launcher that hands it to a process it starts. */
  currentValue(): string {
    if (!this.snapshot) throw new Error(`${this.options.name}: not loaded; call init() first`);
    return this.snapshot.current;
  }

  /** True when `presented` is the current value, or the previous one within its grace. Constant time; never touches the store. */
  matches(presented: string): boolean {
    const s = this.cached();
    const digest = sha256(presented);
    const current = timingSafeEqual(digest, s.currentDigest);
    const previous = s.previousDigest !== null && timingSafeEqual(digest, s.previousDigest);
    return current || (previous && this.now() < s.previousValidUntil);
  }

  /**
   * matches(), and on a miss refreshes from the store (shared by concurrent callers, at most once per second)
   * and checks again, so a rotation by another replica is honoured at once. Never throws for an unreachable
   * store: the last good value answers.
   */
  async verify(presented: string): Promise<boolean> {
    if (this.matches(presented)) return true;
    await this.refresh(true);
    return this.matches(presented);
  }

  /**
   * Replaces the value with `generate()`; the old value stays valid for `graceMs`. Throws CasConflictError
   * (after refreshing the cache) when another replica changed the credential since this one last read it,
   * SecretStoreUnavailableError when the store is unreachable.
   */
  async rotate(): Promise<{ value: string; version: number; previousValidUntil: Date }> {
    const s = this.cached();
    const value = this.options.generate();
    const now = this.now();
    const previousValidUntil = new Date(now + this.options.graceMs);
    const data = {
      current: value,
      rotateTime: new Date(now).toISOString(),
      previous: s.current,
      previousValidUntil: previousValidUntil.toISOString(),
    };
    let version: number;
    try {
      version = await this.options.store.write(this.options.name, data, s.version);
    } catch (err) {
      if (err instanceof CasConflictError) await this.load();
      throw err;
    }
    this.apply({ data, version });
    this.log.info({ version, rotateTime: data.rotateTime, previousValidUntil: data.previousValidUntil }, 'credential rotated');
    return { value, version, previousValidUntil };
  }

  /** Starts refreshing the cache every `refreshIntervalMs`; the timer does not keep the process alive. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.refresh(false), this.options.refreshIntervalMs).unref();
  }

  /** Stops the background refresh. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Starts rotating the credential whenever its current version is at least `everyMs` milliseconds old,
   * checked every min(everyMs / 10, 60 s) on a timer that does not keep the process alive. `everyMs <= 0`
   * turns it off. Replicas running this against one store rotate once per period between them: the
   * check-and-set loser refreshes and leaves it there. Check failures are logged, never thrown. Throws
   * before init().
   */
  startRotation(everyMs: number): void {
    this.cached();
    if (this.rotationTimer || everyMs <= 0) return;
    const checkMs = Math.min(everyMs / 10, MAX_ROTATION_CHECK_MS);
    this.rotationTimer = setInterval(() => {
      // A check still waiting on a slow store is not stacked with another.
      this.rotationCheck ??= this.rotateIfDue(everyMs).finally(() => {
        this.rotationCheck = null;
      });
    }, checkMs).unref();
  }

  /** Stops the scheduled rotation and waits for a check in progress, so no store write outlives the call. */
  async stopRotation(): Promise<void> {
    if (this.rotationTimer) clearInterval(this.rotationTimer);
    this.rotationTimer = null;
    await this.rotationCheck;
  }

  /** Store version of the cached value; 0 before init(). */
  get version(): number {
    return this.snapshot?.version ?? 0;
  }

  /** When the cached version was written (see the class comment for versions without a recorded time). Throws before init(). */
  get rotatedAt(): Date {
    return new Date(this.cached().rotatedAt);
  }

  /** One scheduled-rotation check. Never rejects. */
  private async rotateIfDue(everyMs: number): Promise<void> {
    const due = (): boolean => this.now() - this.cached().rotatedAt >= everyMs;
    if (!due()) return;
    // The cache may predate another replica's rotation; re-read before spending a write on a stale version.
    await this.refresh(false);
    if (!due()) return;
    try {
      await this.rotate();
    } catch (err) {
      if (err instanceof CasConflictError) {
        this.log.debug({ version: this.version }, 'scheduled rotation: another replica rotated first');
        return;
      }
      this.log.warn({ reason: (err as Error).message, version: this.version }, 'scheduled rotation failed; retrying at the next check');
    }
  }

  /** Single-flight load; `rateLimited` ones (on a verify() miss) run at most once per MIN_REFRESH_GAP_MS. */
  private refresh(rateLimited: boolean): Promise<void> {
    if (this.inflight) return this.inflight;
    if (rateLimited && this.now() - this.lastRefreshAt < MIN_REFRESH_GAP_MS) return Promise.resolve();
    this.lastRefreshAt = this.now();
    this.inflight = this.load().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  /** Reads the store into the cache; on failure keeps the last good value and warns. Never rejects. */
  private async load(): Promise<void> {
    try {
      const latest = await this.options.store.read(this.options.name);
      if (latest) this.apply(latest);
    } catch (err) {
      // Only the message: causes can carry request details, and our messages never contain values.
      this.log.warn({ reason: (err as Error).message, version: this.version }, 'credential refresh failed; serving the cached value');
    }
  }

  private apply({ data, version }: { data: Record<string, string>; version: number }): void {
    // A slow read that started before our own rotate() must not roll the cache back.
    if (this.snapshot && version < this.snapshot.version) return;
    const { current, previous, previousValidUntil, rotateTime } = data;
    if (!current) throw new Error(`${this.options.name} version ${version} has no current value`);
    const recorded = rotateTime ? Date.parse(rotateTime) : NaN;
    // Without a recorded time, the first load of this version stands in for it (see the class comment).
    const rotatedAt = !Number.isNaN(recorded) ? recorded : this.snapshot?.version === version ? this.snapshot.rotatedAt : this.now();
    this.snapshot = {
      version,
      current,
      currentDigest: sha256(current),
      previousDigest: previous ? sha256(previous) : null,
      previousValidUntil: previousValidUntil ? Date.parse(previousValidUntil) : -Infinity,
      rotatedAt,
    };
  }

  private cached(): Snapshot {
    if (!this.snapshot) throw new Error(`${this.options.name}: init() has not completed`);
    return this.snapshot;
  }
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
