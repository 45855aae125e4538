import type Database from 'better-sqlite3';

/** A device as the read model holds it (docs/domain.md Device), with its accounts' logical ids. */
export interface DeviceRecord {
  uuid: string;
  physicalId: number;
  isActive: boolean;
  isSsh: boolean;
  isNeedToUpdate: boolean;
  activityType: 'rowgplay' | 'ajagplay';
  isFullServerDetection: boolean;
  isAbleToClearCache: boolean;
  goTimeLimitSeconds: number;
  currentAccountLogicalId: number | undefined;
  /** Ascending. */
  accountLogicalIds: number[];
}

/** A device's SSH key pair; the private key still sealed (`tbenc2.` form). */
export interface SshRecord {
  publicKey: string;
  sealedPrivateKey: string;
  serverDeviceInternalPort: number;
}

/** An account; the Google password still sealed. */
export interface AccountRecord {
  uuid: string;
  logicalId: number;
  firstName: string;
  lastName: string;
  /** `YYYY-MM-DD`. */
  birthDate: string;
  gender: 'male' | 'female';
  googleLogin: string;
  sealedGooglePassword: string;
  isEmpireSleeping: boolean;
  legionUuid: string | undefined;
}

export interface LegionRecord {
  uuid: string;
  title: string;
  extTitle: string | undefined;
  payDayOfMonth: number | undefined;
}

type Row = Record<string, unknown>;

/**
 * The daemon API's reads of the mirror, prepared once on the reader connection (which sees only
 * committed state). Every query is by primary key or a device's link rows: O(rows returned).
 */
export class DeviceQueries {
  private readonly q;

  constructor(reader: Database.Database) {
    this.q = {
      device: reader.prepare('select * from devices where uuid = ?'),
      deviceLogicalIds: reader
        .prepare('select a.logical_id from device_accounts da join accounts a on a.uuid = da.account_uuid where da.device_uuid = ? order by a.logical_id')
        .pluck(),
      logicalIdOf: reader.prepare('select logical_id from accounts where uuid = ?').pluck(),
      ssh: reader.prepare('select * from sshes where device_uuid = ?'),
      accounts: reader.prepare('select a.* from device_accounts da join accounts a on a.uuid = da.account_uuid where da.device_uuid = ? order by a.logical_id'),
      legion: reader.prepare('select * from legions where uuid = ?'),
      legionOfDevice: reader.prepare(
        'select 1 from device_accounts da join accounts a on a.uuid = da.account_uuid where da.device_uuid = ? and a.legion_uuid = ? limit 1',
      ),
      empireDates: reader.prepare('select date from empire_dates').pluck(),
    };
  }

  device(uuid: string): DeviceRecord | undefined {
    const row = this.q.device.get(uuid) as Row | undefined;
    if (!row) return undefined;
    const current = row['current_account_uuid'] ? (this.q.logicalIdOf.get(row['current_account_uuid']) as number | undefined) : undefined;
    return {
      uuid: String(row['uuid']),
      physicalId: Number(row['physical_id']),
      isActive: row['is_active'] === 1,
      isSsh: row['is_ssh'] === 1,
      isNeedToUpdate: row['is_need_to_update'] === 1,
      activityType: row['activity_type'] === 'ajagplay' ? 'ajagplay' : 'rowgplay',
      isFullServerDetection: row['is_full_server_detection'] === 1,
      isAbleToClearCache: row['is_able_to_clear_cache'] === 1,
      goTimeLimitSeconds: Number(row['go_time_limit_seconds']),
      currentAccountLogicalId: current,
      accountLogicalIds: this.q.deviceLogicalIds.all(uuid) as number[],
    };
  }

  ssh(deviceUuid: string): SshRecord | undefined {
    const row = this.q.ssh.get(deviceUuid) as Row | undefined;
    if (!row) return undefined;
    return { publicKey: String(row['public_key']), sealedPrivateKey: String(row['private_key']), serverDeviceInternalPort: Number(row['server_device_internal_port']) };
  }

  /** The device's accounts, by logical id. */
  accounts(deviceUuid: string): AccountRecord[] {
    return (this.q.accounts.all(deviceUuid) as Row[]).map((row) => ({
      uuid: String(row['uuid']),
      logicalId: Number(row['logical_id']),
      firstName: String(row['first_name']),
      lastName: String(row['last_name']),
      birthDate: String(row['birth_date']),
      gender: row['gender'] === 'female' ? 'female' : 'male',
      googleLogin: String(row['google_login']),
      sealedGooglePassword: String(row['google_password']),
      isEmpireSleeping: row['is_empire_sleeping'] === 1,
      legionUuid: row['legion_uuid'] === null ? undefined : String(row['legion_uuid']),
    }));
  }

  /** `uuid` lower-case. */
  legion(uuid: string): LegionRecord | undefined {
    const row = this.q.legion.get(uuid) as Row | undefined;
    if (!row) return undefined;
    return {
      uuid: String(row['uuid']),
      title: String(row['title']),
      extTitle: row['ext_title'] === null ? undefined : String(row['ext_title']),
      payDayOfMonth: row['pay_day_of_month'] === null ? undefined : Number(row['pay_day_of_month']),
    };
  }

  /** Whether one of the device's accounts is in the legion. */
  legionIsOfDevice(deviceUuid: string, legionUuid: string): boolean {
    return this.q.legionOfDevice.get(deviceUuid, legionUuid) !== undefined;
  }

  /** Every empire date, `YYYY-MM-DD`. */
  empireDates(): string[] {
    return this.q.empireDates.all() as string[];
  }
}
