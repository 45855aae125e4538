import type { Em } from './orm.js';
import { isoTimestamp, pgArray } from './sql.js';

/** A daemon's state, worst first; the numbers are titanbot.admin.v1.DeviceState's. */
export type DeviceState = 'offline' | 'failing' | 'behind' | 'current';

/** One device's status as a replica reports it. */
export interface ReportedStatus {
  deviceUuid: string;
  /** Logical id, or GLOBAL_SCOPE (service-kit/daemon-database.ts). */
  scopeKey: number;
  heldVersion: string;
  heldSha256: string;
  /** titanbot.daemon.v1.InstallFailure; 0 = none. */
  failure: number;
  failureMessage: string;
  lastContactTime: Date;
}

/** A scope's version as a replica reports it. */
export interface ReportedScopeVersion {
  scopeKey: number;
  version: string;
  since: Date;
}

/** A rollout's candidate version of a scope as a replica reports it. */
export interface ReportedRolloutVersion {
  rolloutUuid: string;
  scopeKey: number;
  version: string;
}


/**
 * Stores a replica's batch, last write wins per device by last_contact_time and per scope by
 * since; statuses of devices that do not exist (deleted meanwhile) are dropped. A stored status
 * whose version, install failure or scope changes (or a device's first) is added to its history
 * by the table's triggers (migration 0009). Two statements, no write lock, nothing on the change
 * feed.
 */
export async function storeFleetReport(
  em: Em,
  replica: string,
  statuses: readonly ReportedStatus[],
  scopes: readonly ReportedScopeVersion[],
  rolloutVersions: readonly ReportedRolloutVersion[],
): Promise<void> {
  if (statuses.length > 0) {
    await em.execute(
      `insert into device_statuses (device_uuid, scope_key, held_version, held_sha256, failure, failure_message, last_contact_time, replica)
         select u.d, u.s, u.v, u.h, u.f, u.m, u.t, ? from unnest(?::uuid[], ?::bigint[], ?::text[], ?::text[], ?::smallint[], ?::text[], ?::timestamptz[]) u(d, s, v, h, f, m, t)
         join devices on devices.uuid = u.d
       on conflict (device_uuid) do update set
         scope_key = excluded.scope_key, held_version = excluded.held_version, held_sha256 = excluded.held_sha256, failure = excluded.failure,
         failure_message = excluded.failure_message, last_contact_time = excluded.last_contact_time, replica = excluded.replica
       where device_statuses.last_contact_time <= excluded.last_contact_time`,
      [
        replica,
        pgArray(statuses.map((s) => s.deviceUuid)),
        pgArray(statuses.map((s) => s.scopeKey)),
        pgArray(statuses.map((s) => s.heldVersion)),
        pgArray(statuses.map((s) => s.heldSha256)),
        pgArray(statuses.map((s) => s.failure)),
        pgArray(statuses.map((s) => s.failureMessage)),
        pgArray(statuses.map((s) => s.lastContactTime)),
      ],
    );
  }
  if (scopes.length > 0) {
    await em.execute(
      `insert into scope_versions (scope_key, version, since)
         select * from unnest(?::bigint[], ?::text[], ?::timestamptz[])
       on conflict (scope_key) do update set version = excluded.version, since = excluded.since
       where scope_versions.since <= excluded.since`,
      [pgArray(scopes.map((s) => s.scopeKey)), pgArray(scopes.map((s) => s.version)), pgArray(scopes.map((s) => s.since))],
    );
  }
  if (rolloutVersions.length > 0) {
    // A rollout deleted meanwhile (never: rollouts are kept) or unknown is skipped by the join.
    await em.execute(
      `insert into rollout_versions (rollout_uuid, scope_key, version)
         select u.r, u.s, u.v from unnest(?::uuid[], ?::bigint[], ?::text[]) u(r, s, v) join rollouts on rollouts.uuid = u.r
       on conflict (rollout_uuid, scope_key) do update set version = excluded.version`,
      [pgArray(rolloutVersions.map((r) => r.rolloutUuid)), pgArray(rolloutVersions.map((r) => r.scopeKey)), pgArray(rolloutVersions.map((r) => r.version))],
    );
  }
}

/**
 * The running or paused rollout whose scope is the status `s`'s (a global one's is every scope),
 * with whether the device is in the cohort of its current step: the same function as
 * service-kit/cohort.ts (place = first 32 bits of SHA-256("rollout/device") mod 1,000,000, below
 * percent x 10,000, or named by a step so far), in SQL so the fleet view can count a cohort
 * device that holds the candidate as current (fleet-rollouts.test.ts checks the two agree).
 */
const OPEN_ROLLOUT_OF_STATUS = `
  select r.uuid, (r.step_times -> r.current_step ->> 'startTime')::timestamptz as step_start,
         ('x' || left(encode(sha256(convert_to(r.uuid::text || '/' || s.device_uuid::text, 'UTF8')), 'hex'), 8))::bit(32)::bigint % 1000000
           < round((r.steps -> r.current_step ->> 'percent')::numeric * 10000)
         or exists (select 1 from jsonb_array_elements(r.steps) with ordinality e(step, n)
                     where n - 1 <= r.current_step and (e.step -> 'deviceUuids') @> to_jsonb(s.device_uuid::text)) as member
    from rollouts r
   where r.state in ('running', 'paused') and (r.account_logical_id is null or r.account_logical_id = s.scope_key)
   limit 1`;

/**
 * Every status with its state at `now`: offline without contact since `offlineBefore`, else failing
 * when its last install failed, else behind when it holds another version than the one it should
 * (its scope's current one, or while it is in a running or paused rollout's cohort the candidate
 * replicas report for its scope, since the step began) or none, or none is reported yet; else current.
 */
const WITH_STATE = `
  select s.device_uuid, s.scope_key, s.held_version, s.held_sha256, s.failure, s.failure_message, s.last_contact_time, s.replica,
         coalesce(t.version, '') as current_version, t.since as current_since,
         case when s.last_contact_time < ? then 'offline'
              when s.failure <> 0 then 'failing'
              when t.version is null or s.held_version <> t.version then 'behind'
              else 'current' end as state
    from device_statuses s
    left join scope_versions v on v.scope_key = s.scope_key
    left join lateral (${OPEN_ROLLOUT_OF_STATUS}) c on true
    left join rollout_versions rv on c.member and rv.rollout_uuid = c.uuid and rv.scope_key = s.scope_key
    cross join lateral (select case when c.member then rv.version else v.version end as version,
                               case when c.member then c.step_start else v.since end as since) t`;

export interface FleetCounts {
  devices: number;
  current: number;
  behind: number;
  failing: number;
  offline: number;
  /** When the current version of the longest-waiting behind or failing device's scope appeared; null when none waits. */
  oldestWaitingSince: Date | null;
}

/** Devices per state at `offlineBefore`'s reading of contact, optionally of one scope. */
export async function fleetCounts(em: Em, offlineBefore: Date, scopeKey?: number): Promise<FleetCounts> {
  const rows: { devices: string; current: string; behind: string; failing: string; offline: string; oldest: string | null }[] = await em.execute(
    `select count(*) as devices,
            count(*) filter (where state = 'current') as current,
            count(*) filter (where state = 'behind') as behind,
            count(*) filter (where state = 'failing') as failing,
            count(*) filter (where state = 'offline') as offline,
            to_json(min(current_since) filter (where state in ('behind', 'failing'))) #>> '{}' as oldest
       from (${WITH_STATE}) t ${scopeKey === undefined ? '' : 'where scope_key = ?'}`,
    scopeKey === undefined ? [offlineBefore] : [offlineBefore, scopeKey],
  );
  const r = rows[0]!;
  return {
    devices: Number(r.devices),
    current: Number(r.current),
    behind: Number(r.behind),
    failing: Number(r.failing),
    offline: Number(r.offline),
    oldestWaitingSince: r.oldest ? new Date(r.oldest) : null,
  };
}

export interface StoredStatus extends Omit<ReportedStatus, 'lastContactTime'> {
  state: DeviceState;
  currentVersion: string;
  lastContactTime: Date;
  replica: string;
}

/** Up to `limit` statuses after `afterUuid` by device uuid, filtered by state, scope, replica and device. */
export async function selectDeviceStatuses(
  em: Em,
  offlineBefore: Date,
  filter: { state?: DeviceState; scopeKey?: number; replica?: string; deviceUuid?: string; afterUuid?: string },
  limit: number,
): Promise<StoredStatus[]> {
  const where: string[] = [];
  const params: unknown[] = [offlineBefore];
  if (filter.state) (where.push('state = ?'), params.push(filter.state));
  if (filter.scopeKey !== undefined) (where.push('scope_key = ?'), params.push(filter.scopeKey));
  if (filter.replica) (where.push('replica = ?'), params.push(filter.replica));
  if (filter.deviceUuid) (where.push('device_uuid = ?'), params.push(filter.deviceUuid));
  if (filter.afterUuid) (where.push('device_uuid > ?'), params.push(filter.afterUuid));
  params.push(limit);
  const rows: {
    device_uuid: string;
    scope_key: string;
    held_version: string;
    held_sha256: string;
    failure: number;
    failure_message: string;
    last_contact_time: string;
    replica: string;
    current_version: string;
    state: DeviceState;
  }[] = await em.execute(
    `select device_uuid, scope_key, held_version, held_sha256, failure, failure_message, ${isoTimestamp('last_contact_time')}, replica, current_version, state
       from (${WITH_STATE}) t ${where.length ? `where ${where.join(' and ')}` : ''} order by t.device_uuid limit ?`,
    params,
  );
  return rows.map((r) => ({
    deviceUuid: r.device_uuid,
    scopeKey: Number(r.scope_key),
    heldVersion: r.held_version,
    heldSha256: r.held_sha256,
    failure: r.failure,
    failureMessage: r.failure_message,
    lastContactTime: new Date(r.last_contact_time),
    replica: r.replica,
    currentVersion: r.current_version,
    state: r.state,
  }));
}

/** One entry of a device's status history: what a replica reported, from `changeTime` on. */
export interface StoredStatusChange extends Omit<ReportedStatus, 'lastContactTime'> {
  id: number;
  changeTime: Date;
  replica: string;
}

/** Up to `limit` entries of a device's status history before id `beforeId` (all when undefined), newest first. */
export async function selectDeviceStatusChanges(em: Em, deviceUuid: string, beforeId: number | undefined, limit: number): Promise<StoredStatusChange[]> {
  const rows: {
    id: string;
    device_uuid: string;
    scope_key: string;
    held_version: string;
    held_sha256: string;
    failure: number;
    failure_message: string;
    change_time: string;
    replica: string;
  }[] = await em.execute(
    `select id, device_uuid, scope_key, held_version, held_sha256, failure, failure_message, ${isoTimestamp('change_time')}, replica
       from device_status_changes where device_uuid = ?${beforeId === undefined ? '' : ' and id < ?'} order by id desc limit ?`,
    [deviceUuid, ...(beforeId === undefined ? [] : [beforeId]), limit],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    deviceUuid: r.device_uuid,
    scopeKey: Number(r.scope_key),
    heldVersion: r.held_version,
    heldSha256: r.held_sha256,
    failure: r.failure,
    failureMessage: r.failure_message,
    changeTime: new Date(r.change_time),
    replica: r.replica,
  }));
}

/** Deletes status history older than `before`. */
export async function pruneDeviceStatusChanges(em: Em, before: Date): Promise<void> {
  await em.execute('delete from device_status_changes where change_time < ?', [before]);
}
