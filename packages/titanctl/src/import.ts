import * as accounts from '@titanbot/contracts/titanbot/admin/v1/account_service';
import * as devices from '@titanbot/contracts/titanbot/admin/v1/device_service';
import * as empireDates from '@titanbot/contracts/titanbot/admin/v1/empire_date_service';
import * as habits from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import * as legions from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import { status } from '@grpc/grpc-js';
import mysql from 'mysql2/promise';
import type { AdminApi } from './client.js';
import { isServiceError } from './errors.js';

/** What happened to one table's rows (in a dry run: what would happen). */
export interface TableReport {
  table: string;
  read: number;
  created: number;
  /** Already present (same uuid): an import run again changes nothing. */
  skipped: number;
  rejected: { uuid: string; reason: string }[];
}

/** One row's outcome, by which later rows that refer to it are judged in a dry run. */
type Outcome = 'created' | 'skipped' | 'rejected';

/** The latest schema of the original system this importer reads (docs/legacy.md §7). */
const LATEST_MIGRATION = 'Version20260226065721';

/** 32 hex digits (as `lower(hex(uuid))` gives a BINARY(16)) to the canonical uuid text. */
const uuidOf = (hex: string | null): string => (hex ? hex.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5') : '');
const bool = (v: unknown): boolean => Number(v) !== 0;

/**
 * Reads a database of the original system (MariaDB or MySQL, `url` as mysql2 takes it) and loads
 * it through the admin API in dependency order, keeping uuids, SSH key pairs and ports: legions,
 * accounts, devices (with their SSH), device accounts (the current one bound last), habits with
 * pixels and shapes, empire dates. A row already present (ALREADY_EXISTS) is skipped, so running
 * it again is safe; a row the API refuses is reported with the reason, and the rest go on.
 * `dryRun` sends every request with `validate_only` (AIP-163): the write service checks each row
 * as it would apply it and changes nothing, so the report says what a real run would create, skip
 * and refuse, with the same reasons. A row that refers to one the same dry run would create (an
 * account's legion, a device's accounts) is checked without that reference, which a real run
 * would have created first. `progress` is told each row. Daemon tokens are not imported here:
 * they need a device each (titanctl legacy-tokens import). Throws an Error when the database is
 * not the original's latest schema or cannot be read, and the call's ServiceError when the write
 * service is unavailable or refuses the credential.
 */
export async function importOriginal(url: string, api: AdminApi, dryRun: boolean, progress: (table: string, done: number, total: number) => void): Promise<TableReport[]> {
  const db = await mysql.createConnection({ uri: url, dateStrings: true, supportBigNumbers: true });
  try {
    const [versions] = await db.query<mysql.RowDataPacket[]>('select version from doctrine_migration_versions order by version desc limit 1');
    const latest = String(versions[0]?.['version'] ?? '');
    if (!latest.endsWith(LATEST_MIGRATION)) throw new Error(`the database's schema is at ${latest || 'no migration'}; this importer reads ${LATEST_MIGRATION} (migrate the original first)`);
    const rows = async (sql: string): Promise<mysql.RowDataPacket[]> => (await db.query<mysql.RowDataPacket[]>(sql))[0];
    const reports: TableReport[] = [];
    /** Sends each row, counts its outcome, and returns the outcome of each row by its key. */
    const run = async <R>(table: string, items: R[], uuid: (r: R) => string, send: (r: R) => Promise<unknown>): Promise<Map<string, Outcome>> => {
      const report: TableReport = { table, read: items.length, created: 0, skipped: 0, rejected: [] };
      const outcomes = new Map<string, Outcome>();
      for (const [i, item] of items.entries()) {
        outcomes.set(uuid(item), await outcome(report, uuid(item), send(item)));
        progress(table, i + 1, items.length);
      }
      if (items.length === 0) progress(table, 0, 0);
      reports.push(report);
      return outcomes;
    };
    /** In a dry run, whether a row this run would create is referred to: it does not exist yet, so it is left out of the check. */
    const pending = (outcomes: Map<string, Outcome>, key: string): boolean => dryRun && outcomes.get(key) === 'created';

    const legionOutcomes = await run('legions', await rows('select lower(hex(uuid)) as uuid, title, ext_title, pay_day_of_month from legions order by uuid'), (r) => uuidOf(r['uuid']), (r) =>
      api.call(legions.LegionServiceService.createLegion, legions.CreateLegionRequest.fromPartial({
        validateOnly: dryRun,
        legionId: uuidOf(r['uuid']),
        legion: { title: r['title'], extTitle: r['ext_title'] ?? undefined, payDayOfMonth: r['pay_day_of_month'] ?? undefined },
      })),
    );

    const accountRows = await rows(`select lower(hex(uuid)) as uuid, logical_id, first_name, last_name, date_format(birth_date, '%Y-%m-%d') as birth_date, gender,
                  google_login, google_password, is_empire_sleeping, lower(hex(legion_uuid)) as legion_uuid from accounts order by uuid`);
    const accountOutcomes = await run(
      'accounts',
      accountRows,
      (r) => uuidOf(r['uuid']),
      (r) =>
        api.call(accounts.AccountServiceService.createAccount, accounts.CreateAccountRequest.fromPartial({
          validateOnly: dryRun,
          accountId: uuidOf(r['uuid']),
          account: {
            logicalId: Number(r['logical_id']),
            firstName: r['first_name'],
            lastName: r['last_name'],
            birthDate: new Date(`${r['birth_date']}T00:00:00Z`),
            gender: r['gender'] === 'female' ? accounts.Gender.GENDER_FEMALE : r['gender'] === 'male' ? accounts.Gender.GENDER_MALE : accounts.Gender.GENDER_UNSPECIFIED,
            googleLogin: r['google_login'],
            googlePassword: r['google_password'],
            isEmpireSleeping: bool(r['is_empire_sleeping']),
            legionUuid: pending(legionOutcomes, uuidOf(r['legion_uuid'])) ? undefined : uuidOf(r['legion_uuid']) || undefined,
          },
        })),
    );

    const deviceRows = await rows(`select lower(hex(d.uuid)) as uuid, d.physical_id, d.is_active, d.is_ssh, d.is_need_to_update, d.activity_type, d.is_full_server_detection,
        d.is_able_to_clear_cache, d.go_time_limit_seconds, s.public, s.private, s.server_device_internal_port
      from devices d left join ssh s on s.uuid = d.ssh_uuid order by d.uuid`);
    const deviceOutcomes = await run('devices', deviceRows, (r) => uuidOf(r['uuid']), (r) =>
      api.call(devices.DeviceServiceService.createDevice, devices.CreateDeviceRequest.fromPartial({
        validateOnly: dryRun,
        deviceId: uuidOf(r['uuid']),
        device: {
          physicalId: Number(r['physical_id']),
          isActive: bool(r['is_active']),
          isSsh: bool(r['is_ssh']),
          isNeedToUpdate: bool(r['is_need_to_update']),
          activityType: r['activity_type'] === 'ajagplay' ? devices.ActivityType.ACTIVITY_TYPE_AJAGPLAY : devices.ActivityType.ACTIVITY_TYPE_ROWGPLAY,
          isFullServerDetection: bool(r['is_full_server_detection']),
          isAbleToClearCache: bool(r['is_able_to_clear_cache']),
          goTimeLimitSeconds: Number(r['go_time_limit_seconds']),
        },
        // A device without its SSH row (a partly failed operation in the original) gets a new pair and port.
        ...(r['private'] ? { sshPublicKey: r['public'], sshPrivateKey: r['private'], serverDeviceInternalPort: Number(r['server_device_internal_port']) } : {}),
      })),
    );

    // One binding per device: its accounts, the current one last so it ends current.
    const links = await rows(`select lower(hex(da.device_uuid)) as device_uuid, a.logical_id, (d.current_account_uuid = da.account_uuid) as is_current
      from device_accounts da join accounts a on a.uuid = da.account_uuid join devices d on d.uuid = da.device_uuid
      union select lower(hex(d.uuid)), a.logical_id, 1 from devices d join accounts a on a.uuid = d.current_account_uuid
        where not exists (select 1 from device_accounts x where x.device_uuid = d.uuid and x.account_uuid = d.current_account_uuid)
      order by 1, 3, 2`);
    const byDevice = new Map<string, { logicalId: number; current: boolean }[]>();
    for (const l of links) byDevice.set(uuidOf(l['device_uuid']), [...(byDevice.get(uuidOf(l['device_uuid'])) ?? []), { logicalId: Number(l['logical_id']), current: bool(l['is_current']) }]);
    const accountOutcomeByLogicalId = new Map(accountRows.map((r) => [String(r['logical_id']), accountOutcomes.get(uuidOf(r['uuid']))!]));
    await run('device_accounts', [...byDevice], ([device]) => device, async ([deviceUuid, wanted]) => {
      const accountPending = (logicalId: number): boolean => pending(accountOutcomeByLogicalId, String(logicalId));
      // A device this dry run would create has no bindings yet: each is checked by its account.
      if (pending(deviceOutcomes, deviceUuid)) {
        const refused = wanted.find((w) => accountOutcomeByLogicalId.get(String(w.logicalId)) === 'rejected');
        if (refused) throw new Refused(`account with logical_id ${refused.logicalId} would not be imported`);
        return;
      }
      const have = await api.call(devices.DeviceServiceService.getDevice, devices.GetDeviceRequest.fromPartial({ uuid: deviceUuid }));
      const current = wanted.find((w) => w.current)?.logicalId;
      const missing = wanted.filter((w) => !w.current && !have.accountLogicalIds.includes(w.logicalId));
      if (missing.length === 0 && (current === undefined || have.currentAccountLogicalId === current)) throw new AlreadyPresent();
      for (const w of [...missing, ...wanted.filter((x) => x.current)]) {
        if (accountPending(w.logicalId)) continue;
        await api.call(devices.DeviceServiceService.bindAccount, devices.BindAccountRequest.fromPartial({ deviceUuid, logicalId: w.logicalId, validateOnly: dryRun }));
      }
    });

    const pixels = await rows(`select lower(hex(hp.habit_uuid)) as habit_uuid, d.x, d.y, c.rgb_hex, c.deviation from habit_pixels hp
      join pixels p on p.uuid = hp.pixel_uuid join dots d on d.uuid = p.dot_uuid join colors c on c.uuid = p.color_uuid order by 1, 2, 3`);
    const shapes = await rows(`select lower(hex(hs.habit_uuid)) as habit_uuid, s.type, s.x, s.y, s.width, s.height, s.rgb_hex, s.size from habit_shapes hs
      join shapes s on s.uuid = hs.shape_uuid order by 1, 3, 4`);
    const group = <T>(list: mysql.RowDataPacket[], map: (r: mysql.RowDataPacket) => T): Map<string, T[]> => {
      const out = new Map<string, T[]>();
      for (const r of list) out.set(uuidOf(r['habit_uuid']), [...(out.get(uuidOf(r['habit_uuid'])) ?? []), map(r)]);
      return out;
    };
    const pixelsOf = group(pixels, (r) => ({ x: Number(r['x']), y: Number(r['y']), rgbHex: String(r['rgb_hex']), deviation: Number(r['deviation'] ?? 0) }));
    const shapesOf = group(shapes, (r) => ({
      type: SHAPE_TYPES[String(r['type'])] ?? habits.ShapeType.SHAPE_TYPE_UNSPECIFIED,
      x: Number(r['x']), y: Number(r['y']), width: Number(r['width']), height: Number(r['height']), rgbHex: String(r['rgb_hex']), size: Number(r['size']),
    }));
    await run(
      'habits',
      await rows(`select lower(hex(uuid)) as uuid, account_logical_id, priority, trigger_shell, log_template, post_timeout_ms, comment, sequence, context,
                  is_interruption, action, is_active from habits order by uuid`),
      (r) => uuidOf(r['uuid']),
      (r) =>
        api.call(habits.HabitServiceService.createHabit, habits.CreateHabitRequest.fromPartial({
          validateOnly: dryRun,
          habitId: uuidOf(r['uuid']),
          habit: {
            accountLogicalId: r['account_logical_id'] ?? undefined,
            priority: r['priority'] ?? undefined,
            triggerShell: r['trigger_shell'] ?? undefined,
            logTemplate: r['log_template'] ?? undefined,
            postTimeoutMs: r['post_timeout_ms'] ?? undefined,
            comment: r['comment'] ?? undefined,
            sequence: r['sequence'] ?? undefined,
            context: r['context'] ?? undefined,
            action: r['action'] ?? undefined,
            isInterruption: bool(r['is_interruption']),
            isActive: bool(r['is_active']),
            pixels: pixelsOf.get(uuidOf(r['uuid'])) ?? [],
            shapes: shapesOf.get(uuidOf(r['uuid'])) ?? [],
          },
        })),
    );

    await run('empire_dates', await rows("select lower(hex(uuid)) as uuid, date_format(date, '%Y-%m-%d') as date from empire_dates order by uuid"), (r) => uuidOf(r['uuid']), (r) =>
      api.call(empireDates.EmpireDateServiceService.createEmpireDate, empireDates.CreateEmpireDateRequest.fromPartial({
        validateOnly: dryRun,
        empireDateId: uuidOf(r['uuid']),
        empireDate: { date: new Date(`${r['date']}T00:00:00Z`) },
      })),
    );
    return reports;
  } finally {
    await db.end();
  }
}

const SHAPE_TYPES: Record<string, habits.ShapeType> = {
  rectangle: habits.ShapeType.SHAPE_TYPE_RECTANGLE,
  circle: habits.ShapeType.SHAPE_TYPE_CIRCLE,
  triangle: habits.ShapeType.SHAPE_TYPE_TRIANGLE,
  irregular: habits.ShapeType.SHAPE_TYPE_IRREGULAR,
};

const ROW_REFUSALS = new Set<status>([status.INVALID_ARGUMENT, status.NOT_FOUND, status.ALREADY_EXISTS, status.FAILED_PRECONDITION]);

/** A row found already imported by a check of ours rather than by the API's ALREADY_EXISTS. */
class AlreadyPresent extends Error {}

/** A row refused by a check of ours (a dry run's row that refers to one it would refuse). */
class Refused extends Error {}

/** Counts one call's outcome in `report` and returns it; rethrows what is not about the row (the service is down, the credential refused). */
async function outcome(report: TableReport, uuid: string, call: Promise<unknown>): Promise<Outcome> {
  try {
    await call;
    report.created++;
    return 'created';
  } catch (err) {
    if (err instanceof AlreadyPresent) {
      report.skipped++;
      return 'skipped';
    }
    if (err instanceof Refused) {
      report.rejected.push({ uuid, reason: err.message });
      return 'rejected';
    }
    if (!isServiceError(err)) throw err;
    // Its own uuid taken: imported before. Any other refusal is about the row (a physical_id or
    // port another device has, a value our rules reject): reported, and the import goes on.
    if (err.code === status.ALREADY_EXISTS && /_id [0-9a-f-]{36} is taken$/.test(err.details)) {
      report.skipped++;
      return 'skipped';
    }
    if (!ROW_REFUSALS.has(err.code)) throw err;
    report.rejected.push({ uuid, reason: err.details });
    return 'rejected';
  }
}

/**
 * Progress to `out`: on a terminal one line redrawn in place, a bar per table; otherwise a JSON
 * line each time a table is done (`{"table", "done", "total"}`), for logs and scripts.
 */
export function importProgress(out: NodeJS.WriteStream): (table: string, done: number, total: number) => void {
  return (table, done, total) => {
    if (out.isTTY) {
      const width = 30;
      const filled = total === 0 ? width : Math.round((done / total) * width);
      out.write(`\r\x1b[K${table.padEnd(16)} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${total}${done === total ? '\n' : ''}`);
    } else if (done === total) {
      out.write(`${JSON.stringify({ table, done, total })}\n`);
    }
  };
}
