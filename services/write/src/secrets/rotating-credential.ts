import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { CasConflictError, type SecretStore } from '@titanbot/service-kit/secrets/secret-store';

/** verify() misses refresh from the store at most this often, so garbage keys cannot hammer it. */
const MIN_REFRESH_GAP_MS = 1_000;

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
}

/**
 * The cached view of one credential stored as `{ current, previous?, previousValidUntil? }` (ISO time) in a
 * SecretStore. Checks are answered from the cache; every replica converges through periodic and on-miss
 * refreshes, and rotations race safely through the store's check-and-set. Values are never logged.
 */
export class RotatingCredential {
  private readonly now: () => number;
  private readonly log: Logger;
  private snapshot: Snapshot | null = null;
  private inflight: Promise<void> | null = null;
  private lastRefreshAt = -Infinity;
  private timer: NodeJS.Timeout | null = null;

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
    const data = { current: bootstrapValue ?? generate() };
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
    const previousValidUntil = new Date(this.now() + this.options.graceMs);
    const data = { current: value, previous: s.current, previousValidUntil: previousValidUntil.toISOString() };
    let version: number;
    try {
      version = await this.options.store.write(this.options.name, data, s.version);
    } catch (err) {
      if (err instanceof CasConflictError) await this.load();
      throw err;
    }
    this.apply({ data, version });
    this.log.info({ version, previousValidUntil: data.previousValidUntil }, 'credential rotated');
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

  /** Store version of the cached value; 0 before init(). */
  get version(): number {
    return this.snapshot?.version ?? 0;
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
    const { current, previous, previousValidUntil } = data;
    if (!current) throw new Error(`${this.options.name} version ${version} has no current value`);
    this.snapshot = {
      version,
      current,
      currentDigest: sha256(current),
      previousDigest: previous ? sha256(previous) : null,
      previousValidUntil: previousValidUntil ? Date.parse(previousValidUntil) : -Infinity,
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
