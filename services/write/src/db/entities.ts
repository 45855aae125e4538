import { EntitySchema } from '@mikro-orm/core';
import type { DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import { Account } from '../domain/account.js';
import { DaemonToken } from '../domain/daemon-token.js';
import { Device } from '../domain/device.js';
import { EmpireDate } from '../domain/empire-date.js';
import { Habit } from '../domain/habit.js';
import { Legion } from '../domain/legion.js';
import { Rollout } from '../domain/rollout.js';
import { Ssh } from '../domain/ssh.js';
import { SealedText } from './sealed-text.js';

// Mapping lives here so domain/ stays free of ORM imports. Aggregates refer to each other by id
// (DDD), so only scalar columns are mapped; link tables are written by the repositories.
// `version` is MikroORM's optimistic lock column and doubles as the AIP-154 etag.

const version = { type: 'integer', version: true } as const;
const timestamptz = { type: 'Date', columnType: 'timestamptz' } as const;

export const LegionSchema = new EntitySchema<Legion>({
  class: Legion,
  tableName: 'legions',
  properties: {
    uuid: { type: 'uuid', primary: true },
    title: { type: 'text' },
    extTitle: { type: 'text', nullable: true },
    payDayOfMonth: { type: 'smallint', nullable: true },
    version,
  },
});

/** Accounts; `google_password` is stored sealed. */
const accountSchema = (keyring: DataKeyring | undefined): EntitySchema<Account> =>
  new EntitySchema<Account>({
    class: Account,
    tableName: 'accounts',
    properties: {
      uuid: { type: 'uuid', primary: true },
      logicalId: { type: 'integer', unique: true },
      firstName: { type: 'text' },
      lastName: { type: 'text' },
      birthDate: { type: 'date' },
      gender: { type: 'text' },
      googleLogin: { type: 'text' },
      googlePassword: { type: new SealedText(keyring, 'accounts.google_password') },
      isEmpireSleeping: { type: 'boolean' },
      legionUuid: { type: 'uuid', nullable: true },
      version,
    },
  });

export const DeviceSchema = new EntitySchema<Device>({
  class: Device,
  tableName: 'devices',
  properties: {
    uuid: { type: 'uuid', primary: true },
    physicalId: { type: 'integer', unique: true },
    isActive: { type: 'boolean' },
    isSsh: { type: 'boolean' },
    isNeedToUpdate: { type: 'boolean' },
    activityType: { type: 'text' },
    isFullServerDetection: { type: 'boolean' },
    isAbleToClearCache: { type: 'boolean' },
    goTimeLimitSeconds: { type: 'integer' },
    currentAccountUuid: { type: 'uuid', nullable: true },
    version,
  },
});

/** Device SSH key pairs; `private_key` is stored sealed. */
const sshSchema = (keyring: DataKeyring | undefined): EntitySchema<Ssh> =>
  new EntitySchema<Ssh>({
    class: Ssh,
    tableName: 'sshes',
    properties: {
      deviceUuid: { type: 'uuid', primary: true },
      publicKey: { type: 'text' },
      privateKey: { type: new SealedText(keyring, 'sshes.private_key') },
      serverDeviceInternalPort: { type: 'integer', unique: true },
      version,
    },
  });

export const HabitSchema = new EntitySchema<Habit>({
  class: Habit,
  tableName: 'habits',
  properties: {
    uuid: { type: 'uuid', primary: true },
    accountLogicalId: { type: 'integer', nullable: true },
    priority: { type: 'integer', nullable: true },
    triggerShell: { type: 'text', nullable: true },
    logTemplate: { type: 'text', nullable: true },
    postTimeoutMs: { type: 'integer', nullable: true },
    comment: { type: 'text', nullable: true },
    sequence: { type: 'integer', nullable: true },
    context: { type: 'text', nullable: true },
    action: { type: 'text', nullable: true },
    isInterruption: { type: 'boolean' },
    isActive: { type: 'boolean' },
    updatedAt: timestamptz,
    version,
    // Loaded and stored by db/habit-lists.ts (shared, deduplicated rows), not by the ORM.
    pixels: { type: 'json', persist: false },
    shapes: { type: 'json', persist: false },
  },
});

export const EmpireDateSchema = new EntitySchema<EmpireDate>({
  class: EmpireDate,
  tableName: 'empire_dates',
  properties: {
    uuid: { type: 'uuid', primary: true },
    date: { type: 'date', unique: true },
    version,
  },
});

export const DaemonTokenSchema = new EntitySchema<DaemonToken>({
  class: DaemonToken,
  tableName: 'daemon_tokens',
  properties: {
    uuid: { type: 'uuid', primary: true },
    deviceUuid: { type: 'uuid' },
    tokenHash: { type: 'text', unique: true },
    prefix: { type: 'text' },
    kind: { type: 'text' },
    createTime: timestamptz,
    expireTime: { ...timestamptz, nullable: true },
    revokeTime: { ...timestamptz, nullable: true },
    rotateTime: { ...timestamptz, nullable: true },
    rotatedFromUuid: { type: 'uuid', nullable: true },
    version,
  },
});

export const RolloutSchema = new EntitySchema<Rollout>({
  class: Rollout,
  tableName: 'rollouts',
  properties: {
    uuid: { type: 'uuid', primary: true },
    description: { type: 'text' },
    state: { type: 'text' },
    accountLogicalId: { type: 'integer', nullable: true },
    changes: { type: 'json' },
    habitUuids: { type: 'json' },
    steps: { type: 'json' },
    stepTimes: { type: 'json' },
    currentStep: { type: 'integer' },
    gates: { type: 'json', nullable: true },
    stateReason: { type: 'text' },
    createTime: timestamptz,
    updateTime: timestamptz,
    version,
  },
});

/** Every mapped entity; sealed columns use `keyring` (none for migrations: they never touch them). */
export const entities = (keyring: DataKeyring | undefined) => [
  LegionSchema,
  accountSchema(keyring),
  DeviceSchema,
  sshSchema(keyring),
  HabitSchema,
  EmpireDateSchema,
  DaemonTokenSchema,
  RolloutSchema,
];
