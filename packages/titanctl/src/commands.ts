import { status } from '@grpc/grpc-js';
import { Empty } from '@titanbot/contracts/google/protobuf/empty';
import * as accounts from '@titanbot/contracts/titanbot/admin/v1/account_service';
import * as adminToken from '@titanbot/contracts/titanbot/admin/v1/admin_token_service';
import * as audit from '@titanbot/contracts/titanbot/admin/v1/audit_service';
import * as tokens from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import * as dataKey from '@titanbot/contracts/titanbot/admin/v1/data_key_service';
import * as devices from '@titanbot/contracts/titanbot/admin/v1/device_service';
import * as empireDates from '@titanbot/contracts/titanbot/admin/v1/empire_date_service';
import * as habits from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import * as legions from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import * as logs from '@titanbot/contracts/titanbot/admin/v1/log_service';
import {
  activityType,
  bool,
  date,
  duration,
  flag,
  gender,
  instant,
  int,
  later,
  pixel,
  required,
  shape,
  switchFlag,
  text,
  uuid,
  type Values,
} from './args.js';
import { ETAG, list, unary, update, type Resource } from './command.js';
import { dateOnly } from './output.js';
import { FLEET } from './fleet.js';
import { ROLLOUTS } from './rollouts.js';

// Flags are named after the proto fields in kebab-case (a few shortened where the proto name only
// repeats the resource: --legion, --account, --pay-day). `path` is the update_mask path.

const ID = required(flag('uuid', uuid, 'the resource id (or give it as the argument)'));
const REQUEST_ID = flag('request-id', text, 'idempotency key, a UUID (AIP-155): a retry with the same id returns the first result');
const DEVICE = required(flag('device', uuid, 'device id'));
const DEVICE_FILTER = flag('device', uuid, 'only this device');

const PHYSICAL_ID = flag('physical-id', int, 'unique physical id', { path: 'physical_id' });
const DEVICE_FLAGS = [
  PHYSICAL_ID,
  flag('is-active', bool, 'default false', { path: 'is_active' }),
  flag('is-ssh', bool, 'default false', { path: 'is_ssh' }),
  flag('is-need-to-update', bool, 'default false', { path: 'is_need_to_update' }),
  flag('activity-type', activityType, 'default rowgplay', { path: 'activity_type' }),
  flag('is-full-server-detection', bool, 'default false', { path: 'is_full_server_detection' }),
  flag('is-able-to-clear-cache', bool, 'default false', { path: 'is_able_to_clear_cache' }),
  flag('go-time-limit-seconds', int, 'seconds >= 0, default 100', { path: 'go_time_limit_seconds', clearable: true }),
] as const;
const [, IS_ACTIVE, IS_SSH, IS_NEED_TO_UPDATE, ACTIVITY_TYPE, IS_FULL_SERVER_DETECTION, IS_ABLE_TO_CLEAR_CACHE, GO_TIME_LIMIT] = DEVICE_FLAGS;
const SSH_PORT = flag('port', int, 'SSH tunnel port on the server (default: smallest free one)');

const deviceFields = (v: Values) => ({
  physicalId: v.get(PHYSICAL_ID),
  isActive: v.get(IS_ACTIVE),
  isSsh: v.get(IS_SSH),
  isNeedToUpdate: v.get(IS_NEED_TO_UPDATE),
  activityType: v.get(ACTIVITY_TYPE),
  isFullServerDetection: v.get(IS_FULL_SERVER_DETECTION),
  isAbleToClearCache: v.get(IS_ABLE_TO_CLEAR_CACHE),
  goTimeLimitSeconds: v.get(GO_TIME_LIMIT),
});

const LOGICAL_ID = flag('logical-id', int, "the account's logical id (its business key, >= 1)");
const ACCOUNT_FLAGS = [
  flag('first-name', text, '', { path: 'first_name' }),
  flag('last-name', text, '', { path: 'last_name' }),
  flag('birth-date', date, '', { path: 'birth_date' }),
  flag('gender', gender, '', { path: 'gender' }),
  flag('google-login', text, '', { path: 'google_login' }),
  flag('google-password', text, 'a secret: prefer a shell variable to typing it', { path: 'google_password' }),
  flag('is-empire-sleeping', bool, 'default false', { path: 'is_empire_sleeping' }),
  flag('legion', uuid, "the account's legion", { path: 'legion_uuid', clearable: true }),
] as const;
const [FIRST_NAME, LAST_NAME, BIRTH_DATE, GENDER, GOOGLE_LOGIN, GOOGLE_PASSWORD, IS_EMPIRE_SLEEPING, LEGION] = ACCOUNT_FLAGS;

const accountFields = (v: Values) => ({
  firstName: v.get(FIRST_NAME),
  lastName: v.get(LAST_NAME),
  birthDate: v.get(BIRTH_DATE),
  gender: v.get(GENDER),
  googleLogin: v.get(GOOGLE_LOGIN),
  googlePassword: v.get(GOOGLE_PASSWORD),
  isEmpireSleeping: v.get(IS_EMPIRE_SLEEPING),
  legionUuid: v.get(LEGION),
});

const LEGION_FLAGS = [
  flag('title', text, 'non-empty', { path: 'title' }),
  flag('ext-title', text, '', { path: 'ext_title', clearable: true }),
  flag('pay-day', int, 'pay day of month, 1..31', { path: 'pay_day_of_month', clearable: true }),
] as const;
const [TITLE, EXT_TITLE, PAY_DAY] = LEGION_FLAGS;

const legionFields = (v: Values) => ({ title: v.get(TITLE), extTitle: v.get(EXT_TITLE), payDayOfMonth: v.get(PAY_DAY) });

const ACCOUNT = flag('account', int, 'account logical id (unset: a global habit, exported to every daemon)', {
  path: 'account_logical_id',
  clearable: true,
});
const HABIT_FLAGS = [
  ACCOUNT,
  flag('priority', int, 'higher first in exports', { path: 'priority', clearable: true }),
  flag('trigger-shell', text, '', { path: 'trigger_shell', clearable: true }),
  flag('log-template', text, '', { path: 'log_template', clearable: true }),
  flag('post-timeout-ms', int, 'milliseconds >= 0', { path: 'post_timeout_ms', clearable: true }),
  flag('comment', text, '', { path: 'comment', clearable: true }),
  flag('sequence', int, '', { path: 'sequence', clearable: true }),
  flag('context', text, '', { path: 'context', clearable: true }),
  flag('action', text, '', { path: 'action', clearable: true }),
  flag('is-interruption', bool, 'default true', { path: 'is_interruption' }),
  flag('is-active', bool, 'default true; inactive habits are not exported', { path: 'is_active' }),
  flag('pixel', pixel, 'a screen point and its color (repeatable; on update replaces the list)', {
    path: 'pixels',
    repeat: true,
    clearable: true,
  }),
  flag('shape', shape, 'a screen area and its color; type is rectangle, circle, triangle or irregular (repeatable; on update replaces the list)', {
    path: 'shapes',
    repeat: true,
    clearable: true,
  }),
] as const;
const [, PRIORITY, TRIGGER_SHELL, LOG_TEMPLATE, POST_TIMEOUT_MS, COMMENT, SEQUENCE, CONTEXT, ACTION, IS_INTERRUPTION, HABIT_IS_ACTIVE, PIXEL, SHAPE] =
  HABIT_FLAGS;

const habitFields = (v: Values) => ({
  accountLogicalId: v.get(ACCOUNT),
  priority: v.get(PRIORITY),
  triggerShell: v.get(TRIGGER_SHELL),
  logTemplate: v.get(LOG_TEMPLATE),
  postTimeoutMs: v.get(POST_TIMEOUT_MS),
  comment: v.get(COMMENT),
  sequence: v.get(SEQUENCE),
  context: v.get(CONTEXT),
  action: v.get(ACTION),
  isInterruption: v.get(IS_INTERRUPTION),
  isActive: v.get(HABIT_IS_ACTIVE),
  pixels: v.all(PIXEL),
  shapes: v.all(SHAPE),
});

const ACCOUNT_FILTER = flag('account', int, 'only habits of this account logical id');
const GLOBAL = switchFlag('global', 'only global habits');
const LEGION_FILTER = flag('legion', uuid, 'only accounts of this legion');

const EMPIRE_DATE = flag('date', date, 'unique', { path: 'date' });

const TTL = flag('ttl', duration, 'lifetime (server default 24h)');
const LEGACY_TOKEN = required(flag('legacy-token', text, "the token as the original system's daemon sends it in X-API-KEY"));
const EXPIRES = flag('expires', later(), 'when it stops working (ISO date-time, or a span from now such as 90d; unset: never, as in the original)');

const ACTOR = flag('actor', text, "only this actor: an operator's subject or client id, admin-token, reader-credential, or a refused daemon token's uuid");
const CALLED_SINCE = flag('since', instant(), 'only calls made at or after this time (ISO date-time, or a span ago: 2h)');
const CALLED_UNTIL = flag('until', instant(), 'only calls made before this time (ISO date-time, or a span ago: 2h)');

/** An account's birth date is a day; the table shows it as one. */
const ACCOUNT_CELLS = { birthDate: dateOnly };
const METHOD = flag('method', text, 'only this gRPC method, e.g. /titanbot.admin.v1.DeviceService/CreateDevice');
const RESOURCE = flag('resource', text, 'only calls on this resource (its uuid)');
const GREP = flag('grep', text, 'only lines containing this text (case-sensitive)');
const SINCE = flag('since', instant(), 'only lines logged at or after this time (ISO date-time, or a span ago: 2h)');
const UNTIL = flag('until', instant(), 'only lines logged before this time (ISO date-time, or a span ago: 2h)');
const NEWEST_FIRST = switchFlag('newest-first', 'newest lines first');

/** DeviceService.BindAccount, offered as `devices bind` and `accounts bind`. */
const BIND_ACCOUNT = unary({
  verb: 'bind',
  summary: "add an account to the device's accounts and make it current (idempotent)",
  flags: [DEVICE, required(LOGICAL_ID)],
  method: devices.DeviceServiceService.bindAccount,
  response: devices.Device,
  request: (v) => devices.BindAccountRequest.fromPartial({ deviceUuid: v.get(DEVICE), logicalId: v.get(LOGICAL_ID) }),
});

/** Every admin RPC, by resource and verb. */
export const RESOURCES: readonly Resource[] = [
  {
    name: 'devices',
    summary: 'devices daemons run on, their bound accounts and SSH key pairs',
    commands: [
      unary({
        verb: 'create',
        summary: 'create a device with its SSH key pair',
        flags: [required(PHYSICAL_ID), ...DEVICE_FLAGS.slice(1), SSH_PORT, REQUEST_ID],
        method: devices.DeviceServiceService.createDevice,
        response: devices.Device,
        request: (v) =>
          devices.CreateDeviceRequest.fromPartial({ device: deviceFields(v), serverDeviceInternalPort: v.get(SSH_PORT), requestId: v.get(REQUEST_ID) }),
      }),
      unary({
        verb: 'get',
        summary: 'show one device',
        flags: [ID],
        positional: ID,
        method: devices.DeviceServiceService.getDevice,
        response: devices.Device,
        request: (v) => devices.GetDeviceRequest.fromPartial({ uuid: v.get(ID) }),
      }),
      list({
        verb: 'list',
        summary: 'list devices in creation order',
        flags: [PHYSICAL_ID],
        method: devices.DeviceServiceService.listDevices,
        response: devices.ListDevicesResponse,
        field: 'devices',
        item: devices.Device,
        request: (v) => devices.ListDevicesRequest.fromPartial({ physicalId: v.get(PHYSICAL_ID) }),
      }),
      update({
        verb: 'update',
        summary: 'change the fields given (--clear resets an optional one to its default)',
        flags: [ID, ...DEVICE_FLAGS],
        positional: ID,
        method: devices.DeviceServiceService.updateDevice,
        response: devices.Device,
        request: (v, updateMask) =>
          devices.UpdateDeviceRequest.fromPartial({ device: { uuid: v.get(ID), etag: v.get(ETAG), ...deviceFields(v) }, updateMask }),
      }),
      unary({
        verb: 'delete',
        summary: 'delete a device, its SSH key pair (freeing its port), bindings and daemon tokens',
        flags: [ID],
        positional: ID,
        method: devices.DeviceServiceService.deleteDevice,
        response: Empty,
        request: (v) => devices.DeleteDeviceRequest.fromPartial({ uuid: v.get(ID) }),
      }),
      BIND_ACCOUNT,
      unary({
        verb: 'ssh',
        summary: "show the device's SSH settings, private key included",
        flags: [DEVICE],
        positional: DEVICE,
        method: devices.DeviceServiceService.getDeviceSsh,
        response: devices.Ssh,
        request: (v) => devices.GetDeviceSshRequest.fromPartial({ deviceUuid: v.get(DEVICE) }),
      }),
      unary({
        verb: 'rotate-ssh',
        summary: 'replace the SSH key pair, and the port when --port is given',
        flags: [DEVICE, SSH_PORT],
        positional: DEVICE,
        method: devices.DeviceServiceService.rotateDeviceSsh,
        response: devices.Ssh,
        request: (v) => devices.RotateDeviceSshRequest.fromPartial({ deviceUuid: v.get(DEVICE), port: v.get(SSH_PORT) }),
      }),
    ],
  },
  {
    name: 'accounts',
    summary: 'accounts daemons play with',
    commands: [
      unary({
        verb: 'create',
        summary: 'create an account',
        flags: [required(LOGICAL_ID), ...ACCOUNT_FLAGS.slice(0, 6).map((f) => required<unknown>(f)), ...ACCOUNT_FLAGS.slice(6), REQUEST_ID],
        method: accounts.AccountServiceService.createAccount,
        response: accounts.Account,
        cells: ACCOUNT_CELLS,
        request: (v) =>
          accounts.CreateAccountRequest.fromPartial({ account: { logicalId: v.get(LOGICAL_ID), ...accountFields(v) }, requestId: v.get(REQUEST_ID) }),
      }),
      unary({
        verb: 'get',
        summary: 'show one account',
        flags: [ID],
        positional: ID,
        method: accounts.AccountServiceService.getAccount,
        response: accounts.Account,
        cells: ACCOUNT_CELLS,
        request: (v) => accounts.GetAccountRequest.fromPartial({ uuid: v.get(ID) }),
      }),
      list({
        verb: 'list',
        summary: 'list accounts',
        flags: [LOGICAL_ID, LEGION_FILTER],
        method: accounts.AccountServiceService.listAccounts,
        response: accounts.ListAccountsResponse,
        field: 'accounts',
        item: accounts.Account,
        cells: ACCOUNT_CELLS,
        request: (v) => accounts.ListAccountsRequest.fromPartial({ logicalId: v.get(LOGICAL_ID), legionUuid: v.get(LEGION_FILTER) }),
      }),
      update({
        verb: 'update',
        summary: 'change the fields given (the logical id is immutable)',
        flags: [ID, ...ACCOUNT_FLAGS],
        positional: ID,
        method: accounts.AccountServiceService.updateAccount,
        response: accounts.Account,
        cells: ACCOUNT_CELLS,
        request: (v, updateMask) =>
          accounts.UpdateAccountRequest.fromPartial({ account: { uuid: v.get(ID), etag: v.get(ETAG), ...accountFields(v) }, updateMask }),
      }),
      unary({
        verb: 'delete',
        summary: 'delete an account and unlink it from devices',
        flags: [ID],
        positional: ID,
        method: accounts.AccountServiceService.deleteAccount,
        response: Empty,
        request: (v) => accounts.DeleteAccountRequest.fromPartial({ uuid: v.get(ID) }),
      }),
      BIND_ACCOUNT,
    ],
  },
  {
    name: 'legions',
    summary: 'legions accounts belong to',
    commands: [
      unary({
        verb: 'create',
        summary: 'create a legion',
        flags: [required(TITLE), EXT_TITLE, PAY_DAY, REQUEST_ID],
        method: legions.LegionServiceService.createLegion,
        response: legions.Legion,
        request: (v) => legions.CreateLegionRequest.fromPartial({ legion: legionFields(v), requestId: v.get(REQUEST_ID) }),
      }),
      unary({
        verb: 'get',
        summary: 'show one legion',
        flags: [ID],
        positional: ID,
        method: legions.LegionServiceService.getLegion,
        response: legions.Legion,
        request: (v) => legions.GetLegionRequest.fromPartial({ uuid: v.get(ID) }),
      }),
      list({
        verb: 'list',
        summary: 'list legions',
        flags: [],
        method: legions.LegionServiceService.listLegions,
        response: legions.ListLegionsResponse,
        field: 'legions',
        item: legions.Legion,
        request: () => legions.ListLegionsRequest.fromPartial({}),
      }),
      update({
        verb: 'update',
        summary: 'change the fields given',
        flags: [ID, ...LEGION_FLAGS],
        positional: ID,
        method: legions.LegionServiceService.updateLegion,
        response: legions.Legion,
        request: (v, updateMask) =>
          legions.UpdateLegionRequest.fromPartial({ legion: { uuid: v.get(ID), etag: v.get(ETAG), ...legionFields(v) }, updateMask }),
      }),
      unary({
        verb: 'delete',
        summary: 'delete a legion and clear it on its accounts',
        flags: [ID],
        positional: ID,
        method: legions.LegionServiceService.deleteLegion,
        response: Empty,
        request: (v) => legions.DeleteLegionRequest.fromPartial({ uuid: v.get(ID) }),
      }),
    ],
  },
  {
    name: 'habits',
    summary: 'what daemons do, exported into daemon databases',
    commands: [
      unary({
        verb: 'create',
        summary: 'create a habit (every field optional)',
        flags: [...HABIT_FLAGS, REQUEST_ID],
        method: habits.HabitServiceService.createHabit,
        response: habits.Habit,
        request: (v) => habits.CreateHabitRequest.fromPartial({ habit: habitFields(v), requestId: v.get(REQUEST_ID) }),
      }),
      unary({
        verb: 'get',
        summary: 'show one habit with its pixels and shapes',
        flags: [ID],
        positional: ID,
        method: habits.HabitServiceService.getHabit,
        response: habits.Habit,
        request: (v) => habits.GetHabitRequest.fromPartial({ uuid: v.get(ID) }),
      }),
      list({
        verb: 'list',
        summary: 'list habits',
        flags: [ACCOUNT_FILTER, GLOBAL],
        method: habits.HabitServiceService.listHabits,
        response: habits.ListHabitsResponse,
        field: 'habits',
        item: habits.Habit,
        request: (v) => habits.ListHabitsRequest.fromPartial({ accountLogicalId: v.get(ACCOUNT_FILTER), globalOnly: v.has(GLOBAL) }),
      }),
      update({
        verb: 'update',
        summary: 'change the fields given; --pixel/--shape replace the whole list',
        flags: [ID, ...HABIT_FLAGS],
        positional: ID,
        method: habits.HabitServiceService.updateHabit,
        response: habits.Habit,
        request: (v, updateMask) =>
          habits.UpdateHabitRequest.fromPartial({ habit: { uuid: v.get(ID), etag: v.get(ETAG), ...habitFields(v) }, updateMask }),
      }),
      unary({
        verb: 'delete',
        summary: 'delete a habit and the pixels and shapes no other habit uses',
        flags: [ID],
        positional: ID,
        method: habits.HabitServiceService.deleteHabit,
        response: Empty,
        request: (v) => habits.DeleteHabitRequest.fromPartial({ uuid: v.get(ID) }),
      }),
    ],
  },
  {
    name: 'empire-dates',
    summary: 'days of the empire calendar',
    commands: [
      unary({
        verb: 'create',
        summary: 'add an empire date',
        flags: [required(EMPIRE_DATE), REQUEST_ID],
        method: empireDates.EmpireDateServiceService.createEmpireDate,
        response: empireDates.EmpireDate,
        request: (v) => empireDates.CreateEmpireDateRequest.fromPartial({ empireDate: { date: v.get(EMPIRE_DATE) }, requestId: v.get(REQUEST_ID) }),
      }),
      unary({
        verb: 'get',
        summary: 'show one empire date',
        flags: [ID],
        positional: ID,
        method: empireDates.EmpireDateServiceService.getEmpireDate,
        response: empireDates.EmpireDate,
        request: (v) => empireDates.GetEmpireDateRequest.fromPartial({ uuid: v.get(ID) }),
      }),
      list({
        verb: 'list',
        summary: 'list empire dates in date order',
        flags: [],
        method: empireDates.EmpireDateServiceService.listEmpireDates,
        response: empireDates.ListEmpireDatesResponse,
        field: 'empireDates',
        item: empireDates.EmpireDate,
        request: () => empireDates.ListEmpireDatesRequest.fromPartial({}),
      }),
      update({
        verb: 'update',
        summary: 'move an empire date',
        flags: [ID, EMPIRE_DATE],
        positional: ID,
        method: empireDates.EmpireDateServiceService.updateEmpireDate,
        response: empireDates.EmpireDate,
        request: (v, updateMask) =>
          empireDates.UpdateEmpireDateRequest.fromPartial({ empireDate: { uuid: v.get(ID), etag: v.get(ETAG), date: v.get(EMPIRE_DATE) }, updateMask }),
      }),
      unary({
        verb: 'delete',
        summary: 'delete an empire date',
        flags: [ID],
        positional: ID,
        method: empireDates.EmpireDateServiceService.deleteEmpireDate,
        response: Empty,
        request: (v) => empireDates.DeleteEmpireDateRequest.fromPartial({ uuid: v.get(ID) }),
      }),
      unary({
        verb: 'next',
        summary: 'the next empire time: 03:00 UTC on the Monday of (or after) the next empire date',
        flags: [],
        method: empireDates.EmpireDateServiceService.getNextEmpireDate,
        response: empireDates.GetNextEmpireDateResponse,
        request: () => empireDates.GetNextEmpireDateRequest.fromPartial({}),
      }),
    ],
  },
  {
    name: 'tokens',
    summary: 'daemon tokens (one device each; the plaintext is shown once, at issue)',
    commands: [
      unary({
        verb: 'issue',
        summary: 'issue a daemon token for a device',
        flags: [DEVICE, TTL],
        method: tokens.DaemonTokenServiceService.issueDaemonToken,
        response: tokens.IssueDaemonTokenResponse,
        request: (v) => tokens.IssueDaemonTokenRequest.fromPartial({ deviceUuid: v.get(DEVICE), ttl: v.get(TTL) }),
      }),
      unary({
        verb: 'get',
        summary: 'show what is kept of one token (never the secret)',
        flags: [ID],
        positional: ID,
        method: tokens.DaemonTokenServiceService.getDaemonToken,
        response: tokens.DaemonToken,
        request: (v) => tokens.GetDaemonTokenRequest.fromPartial({ uuid: v.get(ID) }),
      }),
      list({
        verb: 'list',
        summary: 'list daemon tokens',
        flags: [DEVICE_FILTER],
        method: tokens.DaemonTokenServiceService.listDaemonTokens,
        response: tokens.ListDaemonTokensResponse,
        field: 'daemonTokens',
        item: tokens.DaemonToken,
        request: (v) => tokens.ListDaemonTokensRequest.fromPartial({ deviceUuid: v.get(DEVICE_FILTER) }),
      }),
      unary({
        verb: 'revoke',
        summary: 'revoke a token at once (idempotent)',
        flags: [ID],
        positional: ID,
        method: tokens.DaemonTokenServiceService.revokeDaemonToken,
        response: tokens.DaemonToken,
        request: (v) => tokens.RevokeDaemonTokenRequest.fromPartial({ uuid: v.get(ID) }),
      }),
    ],
  },
  {
    name: 'legacy-tokens',
    summary: "the original system's daemon tokens, imported for its daemons on the legacy HTTP API (only their SHA-256 is kept)",
    commands: [
      unary({
        verb: 'import',
        summary: 'import one token of the original system, bound to the device whose daemon uses it',
        flags: [DEVICE, LEGACY_TOKEN, EXPIRES],
        method: tokens.DaemonTokenServiceService.importLegacyDaemonToken,
        response: tokens.DaemonToken,
        request: (v) => tokens.ImportLegacyDaemonTokenRequest.fromPartial({ deviceUuid: v.get(DEVICE), token: v.get(LEGACY_TOKEN), expireTime: v.get(EXPIRES) }),
      }),
      list({
        verb: 'list',
        summary: 'list imported legacy tokens',
        flags: [DEVICE_FILTER],
        method: tokens.DaemonTokenServiceService.listDaemonTokens,
        response: tokens.ListDaemonTokensResponse,
        field: 'daemonTokens',
        item: tokens.DaemonToken,
        request: (v) => tokens.ListDaemonTokensRequest.fromPartial({ deviceUuid: v.get(DEVICE_FILTER), legacy: true }),
      }),
      unary({
        verb: 'revoke',
        summary: 'revoke an imported token at once (idempotent)',
        flags: [ID],
        positional: ID,
        method: tokens.DaemonTokenServiceService.revokeDaemonToken,
        response: tokens.DaemonToken,
        request: (v) => tokens.RevokeDaemonTokenRequest.fromPartial({ uuid: v.get(ID) }),
      }),
    ],
  },
  {
    name: 'logs',
    summary: 'log lines daemons sent',
    commands: [
      list({
        verb: 'list',
        summary: 'list log lines, oldest first (--newest-first: newest first)',
        flags: [GREP, DEVICE_FILTER, SINCE, UNTIL, NEWEST_FIRST],
        method: logs.LogServiceService.listLogs,
        response: logs.ListLogsResponse,
        field: 'logEntries',
        item: logs.LogEntry,
        request: (v) =>
          logs.ListLogsRequest.fromPartial({ contains: v.get(GREP), deviceUuid: v.get(DEVICE_FILTER), startTime: v.get(SINCE), endTime: v.get(UNTIL), orderBy: v.get(NEWEST_FIRST) ? 'log_time desc' : '' }),
      }),
      unary({
        verb: 'clear',
        summary: 'delete log lines (all of them unless --device or --until narrows it)',
        flags: [DEVICE_FILTER, UNTIL],
        method: logs.LogServiceService.clearLogs,
        response: logs.ClearLogsResponse,
        request: (v) => logs.ClearLogsRequest.fromPartial({ deviceUuid: v.get(DEVICE_FILTER), endTime: v.get(UNTIL) }),
      }),
    ],
  },
  {
    name: 'admin-token',
    summary: 'the admin token itself',
    commands: [
      unary({
        verb: 'rotate',
        summary: 'replace the admin token (the previous one stays valid for a grace period)',
        flags: [],
        method: adminToken.AdminTokenServiceService.rotateAdminToken,
        response: adminToken.RotateAdminTokenResponse,
        request: () => adminToken.RotateAdminTokenRequest.fromPartial({}),
      }),
    ],
  },
  {
    name: 'data-key',
    summary: 'the keys sealing secrets at rest',
    commands: [
      unary({
        verb: 'rotate',
        summary: 'make a new data key current and re-seal every secret under it (safe to retry)',
        flags: [],
        method: dataKey.DataKeyServiceService.rotateDataKey,
        response: dataKey.RotateDataKeyResponse,
        request: () => dataKey.RotateDataKeyRequest.fromPartial({}),
        // Re-sealing walks every secret in batches, so it takes longer as the fleet grows.
        deadlineMs: 300_000,
      }),
    ],
  },
  FLEET,
  ROLLOUTS,
  {
    name: 'audit',
    summary: 'who changed what: the audit trail of admin calls that change state',
    commands: [
      list({
        verb: 'list',
        summary: 'list audit events, oldest first',
        flags: [ACTOR, METHOD, RESOURCE, CALLED_SINCE, CALLED_UNTIL],
        method: audit.AuditServiceService.listAuditEvents,
        response: audit.ListAuditEventsResponse,
        field: 'auditEvents',
        item: audit.AuditEvent,
        // The status code a call ended with, by its name (PERMISSION_DENIED), as titanctl's errors say it.
        cells: { code: (_json, native) => status[native as number] ?? String(native) },
        request: (v) =>
          audit.ListAuditEventsRequest.fromPartial({ actor: v.get(ACTOR), method: v.get(METHOD), resource: v.get(RESOURCE), startTime: v.get(CALLED_SINCE), endTime: v.get(CALLED_UNTIL) }),
      }),
    ],
  },
];
