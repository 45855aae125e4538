import { CheckVersionRequest, ReportStatusRequest, type DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { fullJitter, sleep } from '@titanbot/service-kit/backoff';
import type { ClientTlsSettings } from '@titanbot/service-kit/tls';
import type { Dispatcher } from 'undici';
import { createDaemonClient } from './client.js';
import type { SyncLogger } from './sync-logger.js';
import { Downloader, publicUrlDispatcher } from './downloader.js';
import { describeError, installFailureOf, isAuthError, isRetryable, retryDelayMs } from './errors.js';
import { TokenKeeper } from './token-keeper.js';
import { watchVersions } from './version-watcher.js';

export { describeError } from './errors.js';
export type { SyncLogger } from './sync-logger.js';

/** Where to sync from and to. */
export interface DaemonSyncOptions {
  /** Read service address, `host:port`. */
  server: string;
  /** File holding the daemon token (one line, `tbd_...`); rewritten on rotation. */
  tokenFile: string;
  /** The daemon database to keep current; `${dbPath}.version` and `${dbPath}.download*` live beside it. */
  dbPath: string;
  /** Account scope; absent = the global scope. */
  logicalId?: number;
  logger?: SyncLogger;
  /** A stub to use instead of creating one for `server` (it is then not closed by `close()`). */
  client?: DaemonServiceClient;
  /**
   * TLS toward the replica: `{}` trusts the system's CAs, `{ caFile }` that CA; unset = plaintext.
   * A payload URL the replica offers (a CDN) is fetched trusting the system's CAs, and `caFile` too.
   */
  tls?: ClientTlsSettings;
  /** How long `syncOnce` keeps retrying a replica that is down or busy (ms). Default 5 minutes; 0 = one try. */
  timeoutMs?: number;
}

/** `syncOnce`'s patience when `timeoutMs` is not given (ms). */
export const DEFAULT_SYNC_TIMEOUT_MS = 5 * 60_000;

/** Outcome of `syncOnce`. */
export interface SyncResult {
  /** The version now held. */
  version: string;
  /** Whether a new file was installed. */
  changed: boolean;
  /** Bytes downloaded: the file, or the delta that made it from the one held; 0 when unchanged. */
  bytes: number;
}

/**
 * Keeps a local daemon database (`dbPath`) equal to the read service's latest export of one scope,
 * authenticating with the token in `tokenFile` and rotating that token before it expires. Composed
 * of a TokenKeeper (token file, rotation), a version watcher (WatchVersion with reconnects) and a
 * Downloader (resumable, verified, atomically installed downloads). Not safe for two instances on
 * the same `dbPath` at once.
 */
export class DaemonSync {
  private readonly client: DaemonServiceClient;
  private readonly ownsClient: boolean;
  private readonly log: SyncLogger;
  private readonly token: TokenKeeper;
  private readonly downloader: Downloader;
  private readonly publicUrls: Dispatcher | undefined;

  constructor(private readonly options: DaemonSyncOptions) {
    this.client = options.client ?? createDaemonClient(options.server, options.tls);
    this.ownsClient = options.client === undefined;
    this.log = options.logger ?? (() => undefined);
    this.token = new TokenKeeper(this.client, options.tokenFile, this.log);
    this.publicUrls = publicUrlDispatcher(options.tls);
    this.downloader = new Downloader(this.client, this.token, options.dbPath, options.logicalId, this.log, this.publicUrls);
  }

  /**
   * One check, and a download when the server's version differs from the one held. Rotates the
   * token first if it is past 80 % of its lifetime (a failed rotation is logged, not raised).
   * A replica that is down, restarting or busy (isRetryable: UNAVAILABLE, DEADLINE_EXCEEDED,
   * RESOURCE_EXHAUSTED, ...) is retried with jittered waits of at most 1 s (or the server's
   * RetryInfo delay) until `timeoutMs` has passed; a download resumes from the bytes it has.
   * Rejects with an Error for an unreadable or malformed token file (before any call), with the
   * Error of a database path whose state cannot be read (reported first, as an install failure),
   * with the gRPC ServiceError of a call that is refused (UNAUTHENTICATED, PERMISSION_DENIED, ...) or still
   * failing at the deadline, or with an Error when the file fails verification (then deleted).
   */
  async syncOnce(): Promise<SyncResult> {
    await this.token.load();
    try {
      await this.downloader.loadHeld();
    } catch (err) {
      await this.reportStatus(err);
      throw err;
    }
    const deadlineMs = Date.now() + (this.options.timeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS);
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await this.checkAndDownload(deadlineMs);
        if (result.changed) await this.reportStatus();
        return result;
      } catch (err) {
        const retryInMs = retryDelayMs(attempt, err);
        if (!isRetryable(err) || Date.now() + retryInMs > deadlineMs) {
          await this.reportStatus(err);
          throw err;
        }
        this.log('sync-retry', { ...describeError(err), attempt: attempt + 1, retryInMs: Math.round(retryInMs) });
        await sleep(retryInMs);
      }
    }
  }

  /**
   * Follows WatchVersion and downloads every announced version that differs from the one held
   * (announcements arriving during a download collapse into at most one more download), and
   * rotates the token at 80 % of its lifetime. Stream, download and rotation failures are logged
   * and retried with capped, jittered backoff; so is a database path whose state cannot be read
   * (`heldUnreadable`), reported as an install failure each time. Resolves once `signal` aborts
   * and all calls and timers are stopped. Rejects only at start, for an unreadable or malformed
   * token file (without a token nothing can be reported).
   */
  async watch(signal: AbortSignal): Promise<void> {
    await this.token.load();
    await this.loadHeldUntilReadable(signal);
    if (signal.aborted) return;
    let wanted: string | undefined;
    let wake: (() => void) | undefined;
    const onAbort = (): void => wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    const downloads = this.downloadLoop(signal, () => wanted, (w) => (wake = w));
    const rotation = this.token.rotationLoop(signal);
    try {
      await watchVersions(
        this.client,
        this.token,
        { logicalId: this.options.logicalId, held: () => this.downloader.heldVersion },
        (version) => {
          wanted = version;
          wake?.();
        },
        this.log,
        signal,
      );
    } finally {
      signal.removeEventListener('abort', onAbort);
      await Promise.all([downloads, rotation]);
    }
  }

  /** Closes the stub if this instance created it (in-flight calls fail with CANCELLED), and the agent of payload URLs. */
  close(): void {
    if (this.ownsClient) this.client.close();
    void this.publicUrls?.close();
  }

  /** One try of `syncOnce`: token lifetime, CheckVersion, and a download (retrying its own stalls until `deadlineMs`). */
  private async checkAndDownload(deadlineMs: number): Promise<SyncResult> {
    await this.token.rotateIfDue();
    const held = this.downloader.heldVersion;
    const check = await this.token.call(this.client.checkVersion, CheckVersionRequest.fromPartial({ logicalId: this.options.logicalId, knownVersion: held }));
    if (!check.changed) return { version: held, changed: false, bytes: 0 };
    return { ...(await this.downloader.download(check.version, undefined, deadlineMs)), changed: true };
  }

  /**
   * ReportStatus, best effort: what the database holds now, and why the install failed when `err`
   * is an install failure (disk, permission, checksum, schema). A failed report is logged only:
   * the fleet view then just learns later.
   */
  private async reportStatus(err?: unknown): Promise<void> {
    const failed = err === undefined ? undefined : installFailureOf(err);
    if (err !== undefined && !failed) return;
    try {
      await this.token.call(
        this.client.reportStatus,
        ReportStatusRequest.fromPartial({
          logicalId: this.options.logicalId,
          installedVersion: this.downloader.heldVersion,
          installedSha256: this.downloader.heldSha256,
          ...(failed ? { failure: failed.failure, failureMessage: failed.message.slice(0, 1024) } : {}),
        }),
      );
    } catch (reportErr) {
      this.log('status-report-failed', describeError(reportErr));
    }
  }

  /**
   * Reads what the database path holds, retrying with jittered backoff (1 s doubling to 30 s)
   * while it cannot be read (a parent that is a file, a folder without permission, an unreadable
   * `.version`): each failure is reported (ReportStatus, so the fleet view shows the daemon
   * failing and why) and logged as `held-unreadable`. Returns once read, or when `signal` aborts.
   */
  private async loadHeldUntilReadable(signal: AbortSignal): Promise<void> {
    for (let failures = 0; !signal.aborted; failures++) {
      try {
        await this.downloader.loadHeld();
        if (failures > 0) this.log('held-readable', { dbPath: this.options.dbPath });
        return;
      } catch (err) {
        await this.reportStatus(err);
        const retryInMs = fullJitter(failures, 1_000, 30_000);
        this.log('held-unreadable', { dbPath: this.options.dbPath, ...describeError(err), retryInMs: Math.round(retryInMs) });
        await sleep(retryInMs, signal, true);
      }
    }
  }

  /** Runs one download at a time while the latest announced version differs from the one held. */
  private async downloadLoop(signal: AbortSignal, wanted: () => string | undefined, setWake: (wake: (() => void) | undefined) => void): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      const version = wanted();
      if (version === undefined || version === this.downloader.heldVersion) {
        await new Promise<void>((resolve) => setWake(resolve));
        setWake(undefined);
        continue;
      }
      try {
        await this.downloader.download(version, signal);
        failures = 0;
        await this.reportStatus();
      } catch (err) {
        if (signal.aborted) return;
        await this.reportStatus(err);
        const retryInMs = fullJitter(failures++, 1_000, 10_000);
        this.log('download-failed', { version, ...describeError(err), retryInMs: Math.round(retryInMs) });
        if (isAuthError(err)) await this.token.reload();
        await sleep(retryInMs, signal, true);
      }
    }
  }
}
