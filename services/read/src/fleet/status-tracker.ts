import type { DeviceStatus, RolloutVersion, ScopeVersion } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { GLOBAL_SCOPE } from '@titanbot/service-kit/daemon-database';
import { type ScopeVersions } from '../store/versions.js';

/** What this replica knows of one daemon. */
interface Entry {
  scope: number;
  held: string;
  sha256: string;
  /** titanbot.daemon.v1.InstallFailure; 0 = none. */
  failure: number;
  failureMessage: string;
  /** Last call (ms since the epoch). */
  contactMs: number;
  /** The contact time last sent to the write service. */
  sentContactMs: number;
  /** Open WatchVersion streams: the daemon is in contact while one is open. */
  watches: number;
}

/** One batch for ChangeFeedService.ReportDeviceStatuses. */
export interface StatusBatch {
  statuses: DeviceStatus[];
  scopeVersions: ScopeVersion[];
  /** Candidate versions of the active rollouts for the batch's scopes, where changed. */
  rolloutVersions: RolloutVersion[];
  /** The devices in `statuses`, to mark again if the batch is lost. */
  devices: string[];
}

const logicalIdOf = (scope: number): number | undefined => (scope === GLOBAL_SCOPE ? undefined : scope);

/**
 * The replica's view of its daemons for the fleet view: per device, the version it holds (from
 * CheckVersion and WatchVersion's known_version, and ReportStatus), its last install failure and
 * when it last called. Entries are coalesced (the last call wins) and taken in batches by `drain`;
 * a device is in a batch when what it holds changed, or its contact was last sent
 * `contactRefreshMs` ago (so a polling fleet costs the write service one row per daemon per
 * refresh, not per call). O(1) per call and allocation-free once a device is known.
 */
export class StatusTracker {
  private readonly entries = new Map<string, Entry>();
  private readonly dirty = new Set<string>();
  /** The version last sent per scope, and since when it is current (ms). */
  private readonly sentVersions = new Map<number, string>();
  private readonly versionSince = new Map<number, { version: string; sinceMs: number }>();
  /** The candidate version last sent per `scope/rollout`. */
  private readonly sentCandidates = new Map<string, string>();

  constructor(
    private readonly versions: ScopeVersions,
    /** ms since the epoch. */
    private readonly clock: () => number,
    private readonly contactRefreshMs: number,
  ) {}

  /** A call from the daemon of `device` about `scope`; `held` when the call says what it holds. */
  contact(device: string, scope: number, held?: string): void {
    const now = this.clock();
    let e = this.entries.get(device);
    if (!e) {
      e = { scope, held: held ?? '', sha256: '', failure: 0, failureMessage: '', contactMs: now, sentContactMs: Number.NEGATIVE_INFINITY, watches: 0 };
      this.entries.set(device, e);
      this.dirty.add(device);
      return;
    }
    e.contactMs = now;
    if (held !== undefined && (held !== e.held || scope !== e.scope)) {
      if (held !== e.held) e.sha256 = '';
      e.held = held;
      e.scope = scope;
      this.dirty.add(device);
    } else if (now - e.sentContactMs >= this.contactRefreshMs) this.dirty.add(device);
  }

  /** ReportStatus: what the daemon installed, or why its last install failed. */
  report(device: string, scope: number, installed: string, sha256: string, failure: number, failureMessage: string): void {
    this.contact(device, scope, installed);
    const e = this.entries.get(device)!;
    e.sha256 = sha256;
    e.failure = failure;
    e.failureMessage = failureMessage;
    this.dirty.add(device);
  }

  /** A WatchVersion stream opened (after `contact`) or closed: while one is open, the daemon counts as in contact. */
  watching(device: string, delta: 1 | -1): void {
    const e = this.entries.get(device);
    if (e) e.watches += delta;
  }

  /** How many WatchVersion streams `device` holds open here (for DAEMON_MAX_WATCHES). */
  openWatches(device: string): number {
    return this.entries.get(device)?.watches ?? 0;
  }

  /** Takes what changed since the last batch, at most `max` devices, and the scope versions they need. */
  drain(max: number): StatusBatch {
    const now = this.clock();
    for (const [device, e] of this.entries) {
      // An open watch is contact; refreshed like a poll.
      if (e.watches > 0 && now - e.sentContactMs >= this.contactRefreshMs) {
        e.contactMs = now;
        this.dirty.add(device);
      }
    }
    const statuses: DeviceStatus[] = [];
    const devices: string[] = [];
    const scopes = new Set<number>(this.sentVersions.keys());
    for (const device of this.dirty) {
      if (statuses.length >= max) break;
      this.dirty.delete(device);
      const e = this.entries.get(device)!;
      e.sentContactMs = e.contactMs;
      devices.push(device);
      scopes.add(e.scope);
      statuses.push({
        deviceUuid: device,
        logicalId: logicalIdOf(e.scope),
        heldVersion: e.held,
        heldSha256: e.sha256,
        failure: e.failure,
        failureMessage: e.failureMessage,
        lastContactTime: new Date(e.contactMs),
      });
    }
    const scopeVersions: ScopeVersion[] = [];
    for (const scope of scopes) {
      const version = this.versions.version(scope);
      let since = this.versionSince.get(scope);
      if (since?.version !== version) this.versionSince.set(scope, (since = { version, sinceMs: now }));
      if (this.sentVersions.get(scope) === version) continue;
      this.sentVersions.set(scope, version);
      scopeVersions.push({ logicalId: logicalIdOf(scope), version, since: new Date(since.sinceMs) });
    }
    const rolloutVersions: RolloutVersion[] = [];
    for (const scope of scopes) {
      const candidate = this.versions.candidateOf(scope);
      if (!candidate) continue;
      const key = `${scope}/${candidate.rollout}`;
      if (this.sentCandidates.get(key) === candidate.version) continue;
      this.sentCandidates.set(key, candidate.version);
      rolloutVersions.push({ rolloutUuid: candidate.rollout, logicalId: logicalIdOf(scope), version: candidate.version });
    }
    return { statuses, scopeVersions, rolloutVersions, devices };
  }

  /** A batch that was not stored: its devices and scope versions go in the next one. */
  requeue(batch: StatusBatch): void {
    for (const device of batch.devices) this.dirty.add(device);
    for (const v of batch.scopeVersions) this.sentVersions.delete(v.logicalId ?? GLOBAL_SCOPE);
    for (const v of batch.rolloutVersions) this.sentCandidates.delete(`${v.logicalId ?? GLOBAL_SCOPE}/${v.rolloutUuid}`);
  }
}
