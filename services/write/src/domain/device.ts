import { Violations, isInt32 } from './errors.js';

export const ACTIVITY_TYPES = ['rowgplay', 'ajagplay'] as const;
export type ActivityType = (typeof ACTIVITY_TYPES)[number];

export interface DeviceSettings {
  physicalId: number;
  isActive: boolean;
  isSsh: boolean;
  isNeedToUpdate: boolean;
  activityType: ActivityType;
  isFullServerDetection: boolean;
  isAbleToClearCache: boolean;
  /** Seconds, >= 0. */
  goTimeLimitSeconds: number;
}

/** docs/domain.md defaults for a device created with only its physical id. */
export const DEVICE_DEFAULTS: Omit<DeviceSettings, 'physicalId'> = {
  isActive: false,
  isSsh: false,
  isNeedToUpdate: false,
  activityType: 'rowgplay',
  isFullServerDetection: false,
  isAbleToClearCache: false,
  goTimeLimitSeconds: 100,
};

/**
 * The device aggregate root. Its Ssh and its account bindings belong to it; the current account,
 * when set, is one of the bound accounts (BindAccount binds and makes current in one step).
 */
export class Device {
  readonly uuid!: string;
  readonly physicalId!: number;
  readonly isActive!: boolean;
  readonly isSsh!: boolean;
  readonly isNeedToUpdate!: boolean;
  readonly activityType!: ActivityType;
  readonly isFullServerDetection!: boolean;
  readonly isAbleToClearCache!: boolean;
  readonly goTimeLimitSeconds!: number;
  readonly currentAccountUuid!: string | null;
  readonly version!: number;

  /** Applies DEVICE_DEFAULTS to missing settings. Throws DomainError('invalid'). */
  static create(uuid: string, settings: Partial<DeviceSettings> & { physicalId: number }): Device {
    const all = { ...DEVICE_DEFAULTS, ...settings };
    validate(all);
    return Object.assign(new Device(), { uuid, currentAccountUuid: null, version: 1, ...all });
  }

  /** Applies the given settings; same validation as create. */
  update(patch: Partial<DeviceSettings>): void {
    const next: DeviceSettings = { ...this.settings(), ...patch };
    validate(next);
    Object.assign(this, next);
  }

  /** Makes a bound account current; returns false when it already was (nothing changes). */
  makeCurrent(accountUuid: string): boolean {
    if (this.currentAccountUuid === accountUuid) return false;
    Object.assign(this, { currentAccountUuid: accountUuid });
    return true;
  }

  private settings(): DeviceSettings {
    const { physicalId, isActive, isSsh, isNeedToUpdate, activityType, isFullServerDetection, isAbleToClearCache, goTimeLimitSeconds } = this;
    return { physicalId, isActive, isSsh, isNeedToUpdate, activityType, isFullServerDetection, isAbleToClearCache, goTimeLimitSeconds };
  }
}

function validate(s: DeviceSettings): void {
  new Violations()
    .check(isInt32(s.physicalId), 'device.physical_id', 'must be an int32')
    .check(ACTIVITY_TYPES.includes(s.activityType), 'device.activity_type', 'must be rowgplay or ajagplay')
    .check(isInt32(s.goTimeLimitSeconds) && s.goTimeLimitSeconds >= 0, 'device.go_time_limit_seconds', 'must be >= 0')
    .throwIfAny();
}
