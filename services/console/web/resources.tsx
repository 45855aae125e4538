/** The plain admin resources as their pages show them (resource.tsx): their fields, list columns, filters and calls. */
import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { Gender, type Account } from '@titanbot/contracts/es/titanbot/admin/v1/account_service_pb';
import { ActivityType, type Device } from '@titanbot/contracts/es/titanbot/admin/v1/device_service_pb';
import type { EmpireDate } from '@titanbot/contracts/es/titanbot/admin/v1/empire_date_service_pb';
import type { Legion } from '@titanbot/contracts/es/titanbot/admin/v1/legion_service_pb';
import { api } from './api';
import { Time } from './format';
import type { FieldSpec } from './forms';
import { usePolled } from './poll';
import type { Resource } from './resource';

/** Rows per page of a resource list. */
const PAGE_SIZE = 50;

const yesNo = (v: boolean | undefined) => (v ? 'yes' : 'no');
/** A calendar date (stored at 00:00 UTC) as the day it names, the same in every time zone. */
const day = (t: Timestamp | undefined): string => (t ? timestampDate(t).toISOString().slice(0, 10) : '—');

export const accounts: Resource<Account> = {
  path: '/accounts',
  singular: 'account',
  plural: 'accounts',
  field: 'account',
  methods: { create: 'AccountService/CreateAccount', update: 'AccountService/UpdateAccount', delete: 'AccountService/DeleteAccount' },
  fields: [
    { path: 'logical_id', label: 'Logical id', kind: 'int', immutable: true, hint: 'Its scope: daemons bound to it sync its habits. Cannot change.' },
    { path: 'first_name', label: 'First name', kind: 'text' },
    { path: 'last_name', label: 'Last name', kind: 'text' },
    { path: 'birth_date', label: 'Birth date', kind: 'date' },
    {
      path: 'gender',
      label: 'Gender',
      kind: 'enum',
      options: [
        [Gender.UNSPECIFIED, '—'],
        [Gender.MALE, 'male'],
        [Gender.FEMALE, 'female'],
      ],
    },
    { path: 'google_login', label: 'Google login', kind: 'text' },
    { path: 'google_password', label: 'Google password', kind: 'secret', hint: 'Write-only: type one to replace it; it is never shown.' },
    { path: 'is_empire_sleeping', label: 'Empire sleeping', kind: 'bool' },
    { path: 'legion_uuid', label: 'Legion (uuid)', kind: 'optional-text' },
  ],
  filters: [
    { path: 'logical_id', label: 'Logical id', kind: 'optional-int' },
    { path: 'legion_uuid', label: 'Legion (uuid)', kind: 'optional-text' },
  ],
  columns: [
    ['Logical id', (a) => a.logicalId],
    ['Name', (a) => `${a.firstName} ${a.lastName}`.trim() || '—'],
    ['Google login', (a) => a.googleLogin || '—'],
    ['Birth date', (a) => day(a.birthDate)],
    ['Empire sleeping', (a) => yesNo(a.isEmpireSleeping)],
    ['Legion', (a) => (a.legionUuid ? <a href={`/legions/${a.legionUuid}`}>{a.legionUuid.slice(0, 8)}</a> : '—')],
  ],
  title: (a) => `${a.logicalId}${a.firstName || a.lastName ? ` (${`${a.firstName} ${a.lastName}`.trim()})` : ''}`,
  empty: 'No account yet: create one with the form above; daemons bound to it then sync its habits.',
  list: async (f, pageToken) => {
    const res = await api.accounts.listAccounts({ ...f, pageSize: PAGE_SIZE, pageToken });
    return { items: res.accounts, nextPageToken: res.nextPageToken };
  },
  get: (uuid) => api.accounts.getAccount({ uuid }),
  create: (account, requestId) => api.accounts.createAccount({ account, requestId }),
  update: (account, paths) => api.accounts.updateAccount({ account, updateMask: { paths } }),
  remove: (uuid) => api.accounts.deleteAccount({ uuid }),
  deleteEffect: 'It is unbound from its devices and stops being their current account; its habits stay, synced by no daemon.',
};

export const legions: Resource<Legion> = {
  path: '/legions',
  singular: 'legion',
  plural: 'legions',
  field: 'legion',
  methods: { create: 'LegionService/CreateLegion', update: 'LegionService/UpdateLegion', delete: 'LegionService/DeleteLegion' },
  fields: [
    { path: 'title', label: 'Title', kind: 'text' },
    { path: 'ext_title', label: 'Extended title', kind: 'optional-text' },
    { path: 'pay_day_of_month', label: 'Pay day of month', kind: 'optional-int' },
  ],
  filters: [],
  columns: [
    ['Title', (l) => l.title || '—'],
    ['Extended title', (l) => l.extTitle ?? '—'],
    ['Pay day', (l) => l.payDayOfMonth ?? '—'],
  ],
  title: (l) => l.title || l.uuid,
  empty: 'No legion yet: create one with the form above, then set it on its accounts.',
  list: async (_, pageToken) => {
    const res = await api.legions.listLegions({ pageSize: PAGE_SIZE, pageToken });
    return { items: res.legions, nextPageToken: res.nextPageToken };
  },
  get: (uuid) => api.legions.getLegion({ uuid }),
  create: (legion, requestId) => api.legions.createLegion({ legion, requestId }),
  update: (legion, paths) => api.legions.updateLegion({ legion, updateMask: { paths } }),
  remove: (uuid) => api.legions.deleteLegion({ uuid }),
  deleteEffect: 'Its accounts keep their data and belong to no legion.',
};

export const empireDates: Resource<EmpireDate> = {
  path: '/empire-dates',
  singular: 'empire date',
  plural: 'empire dates',
  field: 'empire_date',
  methods: { create: 'EmpireDateService/CreateEmpireDate', update: 'EmpireDateService/UpdateEmpireDate', delete: 'EmpireDateService/DeleteEmpireDate' },
  fields: [{ path: 'date', label: 'Date', kind: 'date', hint: 'A calendar day (UTC). Daemons are told the next one, moved to 03:00 UTC on a Monday.' }],
  filters: [],
  columns: [['Date', (e) => day(e.date)]],
  title: (e) => day(e.date),
  empty: 'No empire date yet: daemons are told there is no next one. Create one with the form above.',
  list: async (_, pageToken) => {
    const res = await api.empireDates.listEmpireDates({ pageSize: PAGE_SIZE, pageToken });
    return { items: res.empireDates, nextPageToken: res.nextPageToken };
  },
  get: (uuid) => api.empireDates.getEmpireDate({ uuid }),
  create: (empireDate, requestId) => api.empireDates.createEmpireDate({ empireDate, requestId }),
  update: (empireDate, paths) => api.empireDates.updateEmpireDate({ empireDate, updateMask: { paths } }),
  remove: (uuid) => api.empireDates.deleteEmpireDate({ uuid }),
  deleteEffect: 'Daemons are told the next one after it instead.',
  Intro: NextEmpireDate,
};

/** What daemons are told now: the next empire date as GetNextEmpireDate answers it. */
function NextEmpireDate() {
  const next = usePolled(() => api.empireDates.getNextEmpireDate({}), 'next');
  if (!next.data) return null;
  return <p>Daemons are told the next empire date is {next.data.nextTime ? <Time value={next.data.nextTime} /> : 'none (no date after today)'}.</p>;
}

const ACTIVITY_OPTIONS = [
  [ActivityType.UNSPECIFIED, '— (the default, ROWGPLAY)'],
  [ActivityType.ROWGPLAY, 'ROWGPLAY'],
  [ActivityType.AJAGPLAY, 'AJAGPLAY'],
] as const;

/** A device's settings, as its page edits them. */
export const DEVICE_FIELDS: readonly FieldSpec[] = [
  { path: 'physical_id', label: 'Physical id', kind: 'int' },
  { path: 'is_active', label: 'Active', kind: 'bool' },
  { path: 'is_ssh', label: 'SSH tunnel on', kind: 'bool' },
  { path: 'is_need_to_update', label: 'Needs to update', kind: 'bool' },
  { path: 'activity_type', label: 'Activity', kind: 'enum', options: ACTIVITY_OPTIONS },
  { path: 'is_full_server_detection', label: 'Full server detection', kind: 'bool' },
  { path: 'is_able_to_clear_cache', label: 'Able to clear cache', kind: 'bool' },
  { path: 'go_time_limit_seconds', label: 'Go time limit (s)', kind: 'optional-int' },
];

export const devices: Resource<Device> = {
  path: '/devices',
  singular: 'device',
  plural: 'devices',
  field: 'device',
  methods: { create: 'DeviceService/CreateDevice', update: 'DeviceService/UpdateDevice', delete: 'DeviceService/DeleteDevice' },
  fields: DEVICE_FIELDS,
  filters: [{ path: 'physical_id', label: 'Physical id', kind: 'optional-int' }],
  columns: [
    ['Physical id', (d) => d.physicalId],
    ['Active', (d) => yesNo(d.isActive)],
    ['Accounts', (d) => d.accountLogicalIds.join(', ') || '—'],
    ['Current account', (d) => d.currentAccountLogicalId ?? '—'],
    ['SSH', (d) => yesNo(d.isSsh)],
  ],
  title: (d) => `Device ${d.physicalId}`,
  empty: 'No device yet: create one with the form above, bind it to an account and issue its daemon a token.',
  list: async (f, pageToken) => {
    const res = await api.devices.listDevices({ ...f, pageSize: PAGE_SIZE, pageToken });
    return { items: res.devices, nextPageToken: res.nextPageToken };
  },
  get: (uuid) => api.devices.getDevice({ uuid }),
  create: (device, requestId) => api.devices.createDevice({ device, requestId }),
  update: (device, paths) => api.devices.updateDevice({ device, updateMask: { paths } }),
  remove: (uuid) => api.devices.deleteDevice({ uuid }),
  deleteEffect: 'Its SSH keys (freeing its port), its account bindings and its daemon tokens go with it: its daemon is refused from then on.',
};
