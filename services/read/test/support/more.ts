import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { AccountServiceClient, DeleteAccountRequest, GetAccountRequest, UpdateAccountRequest, type Account } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { DaemonTokenServiceClient, GetDaemonTokenRequest } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import {
  DeleteDeviceRequest,
  DeviceServiceClient,
  GetDeviceRequest,
  GetDeviceSshRequest,
  UpdateDeviceRequest,
  type Device,
} from '@titanbot/contracts/titanbot/admin/v1/device_service';
import {
  CreateEmpireDateRequest,
  DeleteEmpireDateRequest,
  EmpireDateServiceClient,
  UpdateEmpireDateRequest,
} from '@titanbot/contracts/titanbot/admin/v1/empire_date_service';
import { CreateLegionRequest, DeleteLegionRequest, LegionServiceClient, UpdateLegionRequest, type Legion } from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import { ListLogsRequest, LogServiceClient } from '@titanbot/contracts/titanbot/admin/v1/log_service';
import { CreateRolloutRequest, RolloutServiceClient, StartRolloutRequest, type RolloutChange, type RolloutStep } from '@titanbot/contracts/titanbot/admin/v1/rollout_service';
import { WatchVersionRequest, type DaemonServiceClient, type WatchVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import type pg from 'pg';
import { call, withKey, type Harness } from '@titanbot/write/test-support/harness';
import type { ReadModel } from '../../src/store/read-model.js';
import { MIRRORED_TABLES } from '../../src/store/schema.js';

/** Admin calls the read tests need beyond support/admin.ts. */
export function moreAdminApi(write: Pick<Harness, 'client' | 'adminToken'>) {
  const devices = write.client(DeviceServiceClient);
  const accounts = write.client(AccountServiceClient);
  const legions = write.client(LegionServiceClient);
  const dates = write.client(EmpireDateServiceClient);
  const logs = write.client(LogServiceClient);
  const tokens = write.client(DaemonTokenServiceClient);
  const rollouts = write.client(RolloutServiceClient);
  const key = write.adminToken;
  return {
    createRollout: (changes: RolloutChange[]) => call(rollouts, rollouts.createRollout, CreateRolloutRequest.fromPartial({ changes }), key),
    startRollout: (uuid: string, steps: Partial<RolloutStep>[]) => call(rollouts, rollouts.startRollout, StartRolloutRequest.fromPartial({ uuid, steps }), key),
    getDevice: (uuid: string) => call(devices, devices.getDevice, GetDeviceRequest.fromPartial({ uuid }), key),
    updateDevice: (device: Partial<Device>, updateMask: string[]) => call(devices, devices.updateDevice, UpdateDeviceRequest.fromPartial({ device, updateMask }), key),
    deleteDevice: (uuid: string) => call(devices, devices.deleteDevice, DeleteDeviceRequest.fromPartial({ uuid }), key),
    getDeviceSsh: (deviceUuid: string) => call(devices, devices.getDeviceSsh, GetDeviceSshRequest.fromPartial({ deviceUuid }), key),
    getAccount: (uuid: string) => call(accounts, accounts.getAccount, GetAccountRequest.fromPartial({ uuid }), key),
    updateAccount: (account: Partial<Account>, updateMask: string[]) => call(accounts, accounts.updateAccount, UpdateAccountRequest.fromPartial({ account, updateMask }), key),
    deleteAccount: (uuid: string) => call(accounts, accounts.deleteAccount, DeleteAccountRequest.fromPartial({ uuid }), key),
    createLegion: (legion: Partial<Legion>) => call(legions, legions.createLegion, CreateLegionRequest.fromPartial({ legion }), key),
    updateLegion: (legion: Partial<Legion>, updateMask: string[]) => call(legions, legions.updateLegion, UpdateLegionRequest.fromPartial({ legion, updateMask }), key),
    deleteLegion: (uuid: string) => call(legions, legions.deleteLegion, DeleteLegionRequest.fromPartial({ uuid }), key),
    /** `date` as YYYY-MM-DD. */
    createEmpireDate: (date: string) => call(dates, dates.createEmpireDate, CreateEmpireDateRequest.fromPartial({ empireDate: { date: new Date(`${date}T00:00:00Z`) } }), key),
    updateEmpireDate: (uuid: string, date: string) =>
      call(dates, dates.updateEmpireDate, UpdateEmpireDateRequest.fromPartial({ empireDate: { uuid, date: new Date(`${date}T00:00:00Z`) }, updateMask: ['date'] }), key),
    deleteEmpireDate: (uuid: string) => call(dates, dates.deleteEmpireDate, DeleteEmpireDateRequest.fromPartial({ uuid }), key),
    listLogs: (deviceUuid: string) => call(logs, logs.listLogs, ListLogsRequest.fromPartial({ deviceUuid, pageSize: 1000 }), key),
    getToken: (uuid: string) => call(tokens, tokens.getDaemonToken, GetDaemonTokenRequest.fromPartial({ uuid }), key),
  };
}

/** Every mirrored table as sorted rows of its mirrored columns. */
export type TableRows = Record<string, unknown[][]>;

const sortRows = (rows: unknown[][]): unknown[][] => rows.map((r) => [JSON.stringify(r), r] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, r]) => r);

/** The read model's tables (MIRRORED_TABLES), as stored. */
export function mirrorRows(model: ReadModel): TableRows {
  const out: TableRows = {};
  for (const [table, t] of Object.entries(MIRRORED_TABLES)) {
    out[table] = sortRows(model.reader.prepare(`select ${t.columns.join(', ')} from ${table}`).raw().all() as unknown[][]);
  }
  return out;
}

/**
 * The same tables in PostgreSQL, each row rendered by to_jsonb (as the feed renders it) in a
 * UTC session, projected on the mirrored columns, booleans as 0/1, JSON values as JSON text.
 */
export async function postgresRows(db: pg.Client): Promise<TableRows> {
  const out: TableRows = {};
  await db.query('begin');
  try {
    await db.query("set local time zone 'UTC'");
    for (const [table, t] of Object.entries(MIRRORED_TABLES)) {
      const docs = (await db.query(`select to_jsonb(t) as doc from ${table} t`)).rows as { doc: Record<string, unknown> }[];
      out[table] = sortRows(
        docs.map(({ doc }) =>
          t.columns.map((c) => {
            const v = doc[c];
            if (v === undefined || v === null) return null;
            if (typeof v === 'boolean') return v ? 1 : 0;
            if (typeof v === 'object') return JSON.stringify(v);
            return v;
          }),
        ),
      );
    }
  } finally {
    await db.query('commit');
  }
  return out;
}

/** A WatchVersion stream whose messages are collected as they arrive. */
export interface Watch {
  versions: string[];
  /** Resolves when at least `n` messages have arrived (rejects after `timeoutMs`). */
  next(n: number, timeoutMs?: number): Promise<string[]>;
  error: Promise<ServiceError | undefined>;
  cancel(): void;
  call: ClientReadableStream<WatchVersionResponse>;
}

export function watch(client: DaemonServiceClient, token: string, logicalId: number | undefined, knownVersion: string): Watch {
  const call = client.watchVersion(WatchVersionRequest.fromPartial({ logicalId, knownVersion }), withKey(token));
  const versions: string[] = [];
  const waiters: (() => void)[] = [];
  call.on('data', (m: WatchVersionResponse) => {
    versions.push(m.version);
    for (const w of waiters.splice(0)) w();
  });
  const error = new Promise<ServiceError | undefined>((resolve) => {
    call.on('error', (err: ServiceError) => resolve(err));
    call.on('end', () => resolve(undefined));
  });
  error.then(() => {
    for (const w of waiters.splice(0)) w();
  });
  return {
    versions,
    call,
    error,
    cancel: () => call.cancel(),
    async next(n, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      while (versions.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`expected ${n} WatchVersion messages, got ${versions.length}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => (clearTimeout(timer), resolve()));
        });
      }
      return versions.slice();
    },
  };
}

/** The JSON log lines (pino) whose msg contains `text`. */
export const logLines = (logs: string[], text: string): Record<string, unknown>[] =>
  logs
    .join('')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => String(l['msg'] ?? '').includes(text));
