import { GLOBAL_SCOPE } from '@titanbot/service-kit/daemon-database';
import {
  fleetCounts,
  selectDeviceStatusChanges,
  selectDeviceStatuses,
  storeFleetReport,
  type DeviceState,
  type ReportedRolloutVersion,
  type ReportedScopeVersion,
  type ReportedStatus,
  type StoredStatus,
  type StoredStatusChange,
} from '../db/fleet-store.js';
import { invalid } from '../domain/errors.js';
import { encodePageToken, isUuid, pageSize, requireUuid, decodePageToken, toPage, type Page, type UseCaseContext } from './context.js';

export type { DeviceState, StoredStatus, StoredStatusChange };

/** Most statuses one ReportDeviceStatuses batch may carry. */
const MAX_STATUSES_PER_BATCH = 10_000;

/** The scope key of a logical id (undefined = the global scope). */
export const scopeKey = (logicalId: number | undefined): number => logicalId ?? GLOBAL_SCOPE;
/** The logical id of a scope key (undefined = the global scope). */
export const logicalIdOf = (key: number): number | undefined => (key === GLOBAL_SCOPE ? undefined : key);

/**
 * ReportDeviceStatuses: stores a replica's batch in one transaction, outside the write lock.
 * Errors: invalid (no replica name, too many statuses, a device_uuid or rollout_uuid that is no UUID).
 */
export async function reportDeviceStatuses(
  ctx: UseCaseContext,
  replica: string,
  statuses: ReportedStatus[],
  scopes: ReportedScopeVersion[],
  rolloutVersions: ReportedRolloutVersion[],
): Promise<void> {
  if (!replica) throw invalid('replica', 'is required');
  if (statuses.length > MAX_STATUSES_PER_BATCH) throw invalid('statuses', `at most ${MAX_STATUSES_PER_BATCH} per batch`);
  const checked = statuses.map((s, i) => ({ ...s, deviceUuid: requireUuid(`statuses[${i}].device_uuid`, s.deviceUuid) }));
  const rollouts = rolloutVersions.map((r, i) => ({ ...r, rolloutUuid: requireUuid(`rollout_versions[${i}].rollout_uuid`, r.rolloutUuid) }));
  await ctx.em.transactional((tx) => storeFleetReport(tx, replica, checked, scopes, rollouts));
}

export interface FleetSummary {
  devices: number;
  current: number;
  behind: number;
  failing: number;
  offline: number;
  /** How long the longest-waiting behind or failing device has waited for its scope's current version (ms); 0 when none. */
  oldestBehindMs: number;
}

/** GetFleetSummary: devices per state now; offline = no contact for `offlineAfterMs`. */
export async function getFleetSummary(ctx: UseCaseContext, offlineAfterMs: number, logicalId?: number): Promise<FleetSummary> {
  const counts = await fleetCounts(ctx.em, new Date(ctx.now.getTime() - offlineAfterMs), logicalId === undefined ? undefined : scopeKey(logicalId));
  const { oldestWaitingSince, ...rest } = counts;
  return { ...rest, oldestBehindMs: oldestWaitingSince ? Math.max(0, ctx.now.getTime() - oldestWaitingSince.getTime()) : 0 };
}

/** ListDeviceStatuses by device uuid. Errors: invalid (page_size, page_token, device_uuid). */
export async function listDeviceStatuses(
  ctx: UseCaseContext,
  offlineAfterMs: number,
  query: { pageSize: number; pageToken: string; state?: DeviceState; logicalId?: number; replica: string; deviceUuid: string },
): Promise<Page<StoredStatus>> {
  const size = pageSize(query.pageSize);
  const afterUuid = decodePageToken(query.pageToken, isUuid);
  const deviceUuid = query.deviceUuid ? requireUuid('device_uuid', query.deviceUuid) : undefined;
  const rows = await selectDeviceStatuses(
    ctx.em,
    new Date(ctx.now.getTime() - offlineAfterMs),
    {
      ...(query.state ? { state: query.state } : {}),
      ...(query.logicalId === undefined ? {} : { scopeKey: scopeKey(query.logicalId) }),
      ...(query.replica ? { replica: query.replica } : {}),
      ...(deviceUuid ? { deviceUuid } : {}),
      ...(afterUuid ? { afterUuid } : {}),
    },
    size + 1,
  );
  const items = rows.slice(0, size);
  return { items, nextPageToken: rows.length > size ? encodePageToken(items[items.length - 1]!.deviceUuid) : '' };
}

/**
 * ListDeviceStatusChanges: one device's status history, newest first (entries are kept for
 * STATUS_HISTORY_RETENTION). Errors: invalid (device_uuid, page_size, page_token).
 */
export async function listDeviceStatusChanges(ctx: UseCaseContext, query: { deviceUuid: string; pageSize: number; pageToken: string }): Promise<Page<StoredStatusChange>> {
  const deviceUuid = requireUuid('device_uuid', query.deviceUuid);
  const size = pageSize(query.pageSize);
  const before = decodePageToken(query.pageToken, (key) => /^\d{1,15}$/.test(key));
  const rows = await selectDeviceStatusChanges(ctx.em, deviceUuid, before === undefined ? undefined : Number(before), size + 1);
  return toPage(rows, size, (r) => String(r.id));
}
