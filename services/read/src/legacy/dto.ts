import type { AccountRecord, DeviceRecord, LegionRecord, SshRecord } from '../store/device-queries.js';

/**
 * The original's JSON shapes (docs/legacy.md §4): snake_case keys in declaration order, nulls
 * always present, enums as their lower-case values, dates as `YYYY-MM-DDTHH:MM:SS+00:00`.
 */

/** `{uuid: dto, ...}` keyed by each dto's uuid; an empty map is `[]`, as PHP rendered it. */
export function uuidMap<T extends { uuid: string }>(dtos: readonly T[]): Record<string, T> | [] {
  return dtos.length === 0 ? [] : Object.fromEntries(dtos.map((d) => [d.uuid, d]));
}

/** A `YYYY-MM-DD` date at midnight UTC, as PHP's ATOM format rendered a DATE column. */
const atMidnight = (date: string): string => `${date}T00:00:00+00:00`;

export const deviceDto = (d: DeviceRecord) => ({
  uuid: d.uuid,
  physical_id: d.physicalId,
  is_active: d.isActive,
  is_ssh: d.isSsh,
  is_need_to_update: d.isNeedToUpdate,
  activity_type: d.activityType,
  is_full_server_detection: d.isFullServerDetection,
  is_able_to_clear_cache: d.isAbleToClearCache,
  go_time_limit_seconds: d.goTimeLimitSeconds,
  current_logical_id: d.currentAccountLogicalId ?? null,
});

/** The account with its Google password opened (the owning daemon's own account only). */
export const accountDto = (a: AccountRecord, googlePassword: string) => ({
  uuid: a.uuid,
  logical_id: a.logicalId,
  first_name: a.firstName,
  last_name: a.lastName,
  birth_date: atMidnight(a.birthDate),
  gender: a.gender,
  google_login: a.googleLogin,
  google_password: googlePassword,
  is_empire_sleeping: a.isEmpireSleeping,
});

/**
 * The device's SSH key pair and tunnel port. Our key pair has no id of its own (one per device),
 * so `uuid` is the device's, which is stable and unique as the original's row id was.
 */
export const sshDto = (device: DeviceRecord, ssh: SshRecord, privateKey: string, server: { sshServerName: string; sshServerIp: string; sshServerCommonPort: number }) => ({
  uuid: device.uuid,
  physical_id: device.physicalId,
  // The original stored the key line with its newline.
  public: `${ssh.publicKey}\n`,
  private: privateKey,
  server_device_internal_port: ssh.serverDeviceInternalPort,
  server_name: server.sshServerName,
  server_ip: server.sshServerIp,
  server_common_port: server.sshServerCommonPort,
});

export const legionDto = (l: LegionRecord) => ({
  uuid: l.uuid,
  title: l.title,
  ext_title: l.extTitle ?? null,
  pay_day_of_month: l.payDayOfMonth ?? null,
});
