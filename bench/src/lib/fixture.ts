import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { AccountServiceClient, CreateAccountRequest, Gender } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { DaemonTokenServiceClient, IssueDaemonTokenRequest, type IssueDaemonTokenResponse } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { BindAccountRequest, CreateDeviceRequest, DeviceServiceClient, type Device } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { CreateHabitRequest, HabitServiceClient, UpdateHabitRequest, type Habit } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { RolloutServiceClient, type Rollout, type RolloutChange, type RolloutStep } from '@titanbot/contracts/titanbot/admin/v1/rollout_service';
import { generateDaemonToken, hashDaemonToken, SHOWN_PREFIX_CHARS } from '@titanbot/service-kit/daemon-token';
import pg from 'pg';

/** The benchmark fixture (issue "Benchmarks"): 1,000 accounts' habits, 10,000 habits of 3 pixels, 10 % global. */
export const FIXTURE = { accounts: 1_000, habits: 10_000, pixelsPerHabit: 3, globalShare: 0.1, pixelPool: 5_000 } as const;

/** The account scope with the most habits in the fixture (every scope also has all global ones). */
export const LARGEST_SCOPE = 1;

/**
 * Loads the habits, pixels, dots and colors straight into PostgreSQL in one transaction (the
 * admin API would take a minute for 10,000 habits; the feed triggers still publish every row, so
 * replicas receive them exactly as if an operator had made them). Habit i belongs to account
 * 1 + (i mod 1,000) unless it is one of the 10 % global ones; account 1 gets the extra habits that
 * do not divide evenly, so it is the largest scope.
 */
export async function loadFixture(databaseUrl: string): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    await db.query('begin');
    await db.query(
      `insert into dots (uuid, x, y) select gen_random_uuid(), 1 + g % 100, 1 + g / 100 from generate_series(0, $1 - 1) g`,
      [FIXTURE.pixelPool],
    );
    await db.query(`insert into colors (uuid, rgb_hex, deviation) select gen_random_uuid(), upper(lpad(to_hex(g * 4111), 6, '0')), g % 3 from generate_series(1, 16) g`);
    await db.query(`insert into pixels (uuid, dot_uuid, color_uuid)
      select gen_random_uuid(), d.uuid, (select uuid from colors order by rgb_hex offset (d.x % 16) limit 1) from dots d`);
    const globals = Math.round(FIXTURE.habits * FIXTURE.globalShare);
    await db.query(
      `insert into habits (uuid, account_logical_id, priority, action, comment, is_interruption, is_active, updated_at)
       select gen_random_uuid(),
              case when g < $2 then null else 1 + ((g - $2) % $3) end,
              g % 10, 'tap', 'fixture habit ' || g, true, true, now()
       from generate_series(0, $1 - 1) g`,
      [FIXTURE.habits, globals, FIXTURE.accounts],
    );
    await db.query(
      `insert into habit_pixels (habit_uuid, pixel_uuid, position)
       select h.uuid, p.uuid, k
       from (select uuid, row_number() over (order by uuid) as n from habits) h
       cross join generate_series(0, $1 - 1) k
       join (select uuid, row_number() over (order by uuid) - 1 as n from pixels) p on p.n = (h.n * 7 + k * 1013) % $2`,
      [FIXTURE.pixelsPerHabit, FIXTURE.pixelPool],
    );
    await db.query('commit');
  } catch (err) {
    await db.query('rollback');
    throw err;
  } finally {
    await db.end();
  }
}

type Callback<Res> = (err: ServiceError | null, res: Res) => void;

/**
 * `count` devices bound to the account with `logicalId`, one daemon token each (valid a day),
 * written straight into PostgreSQL in one transaction (the admin API would take minutes for
 * 10,000: each device gets an SSH key pair); the feed publishes every row. Returns the devices'
 * uuids and tokens, in the same order.
 */
export async function insertDevices(databaseUrl: string, logicalId: number, count: number): Promise<{ uuids: string[]; tokens: string[] }> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const tokens = Array.from({ length: count }, () => generateDaemonToken());
    await db.query('begin');
    const { rows } = await db.query<{ uuid: string }>(
      `insert into devices (uuid, physical_id, current_account_uuid)
       select gen_random_uuid(), 1000000000 + g + (select coalesce(max(physical_id), 0) % 1000000000 from devices), (select uuid from accounts where logical_id = $2)
       from generate_series(1, $1) g returning uuid`,
      [count, logicalId],
    );
    const uuids = rows.map((r) => r.uuid);
    await db.query(`insert into device_accounts (device_uuid, account_uuid) select d, (select uuid from accounts where logical_id = $2) from unnest($1::uuid[]) d`, [uuids, logicalId]);
    await db.query(
      `insert into daemon_tokens (uuid, device_uuid, token_hash, prefix, create_time, expire_time)
       select gen_random_uuid(), d, h, p, now(), now() + interval '1 day' from unnest($1::uuid[], $2::text[], $3::text[]) u(d, h, p)`,
      [uuids, tokens.map(hashDaemonToken), tokens.map((t) => t.slice(0, SHOWN_PREFIX_CHARS))],
    );
    await db.query('commit');
    return { uuids, tokens };
  } catch (err) {
    await db.query('rollback');
    throw err;
  } finally {
    await db.end();
  }
}

/** The admin API over the write service, promisified. */
export function adminClient(address: string, adminToken: string) {
  const creds = credentials.createInsecure();
  const accounts = new AccountServiceClient(address, creds);
  const devices = new DeviceServiceClient(address, creds);
  const tokens = new DaemonTokenServiceClient(address, creds);
  const habits = new HabitServiceClient(address, creds);
  const rollouts = new RolloutServiceClient(address, creds);
  const md = (): Metadata => {
    const m = new Metadata();
    m.set('x-api-key', adminToken);
    return m;
  };
  const call = <Res>(fn: (cb: Callback<Res>) => unknown): Promise<Res> => new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
  return {
    /** A device bound to accounts with `logicalIds` (created), and `tokenCount` daemon tokens for it. */
    async provisionDevice(physicalId: number, logicalIds: number[], tokenCount = 1): Promise<{ deviceUuid: string; tokens: string[] }> {
      const device = await call<Device>((cb) => devices.createDevice(CreateDeviceRequest.fromPartial({ device: { physicalId } }), md(), cb));
      for (const logicalId of logicalIds) {
        await call((cb) =>
          accounts.createAccount(
            CreateAccountRequest.fromPartial({
              account: { logicalId, firstName: 'Bench', lastName: 'Mark', birthDate: new Date('1990-01-01T00:00:00Z'), gender: Gender.GENDER_MALE, googleLogin: `b${logicalId}@example.com`, googlePassword: 'bench' },
            }),
            md(),
            cb,
          ),
        );
        await call((cb) => devices.bindAccount(BindAccountRequest.fromPartial({ deviceUuid: device.uuid, logicalId }), md(), cb));
      }
      const issued: string[] = [];
      for (let i = 0; i < tokenCount; i++) {
        issued.push((await call<IssueDaemonTokenResponse>((cb) => tokens.issueDaemonToken(IssueDaemonTokenRequest.fromPartial({ deviceUuid: device.uuid }), md(), cb))).token);
      }
      return { deviceUuid: device.uuid, tokens: issued };
    },
    /** Creates a global habit; returns its uuid. */
    createGlobalHabit: async (action: string): Promise<string> => (await call<Habit>((cb) => habits.createHabit(CreateHabitRequest.fromPartial({ habit: { action } }), md(), cb))).uuid,
    /** Changes a habit's comment (one committed change, one feed batch). */
    touchHabit: (uuid: string, comment: string): Promise<unknown> =>
      call((cb) => habits.updateHabit(UpdateHabitRequest.fromPartial({ habit: { uuid, comment }, updateMask: ['comment'] }), md(), cb)),
    /** A rollout of `changes` (created, not started). */
    createRollout: (changes: RolloutChange[]): Promise<Rollout> => call((cb) => rollouts.createRollout({ changes, description: 'bench', requestId: '', validateOnly: false }, md(), cb)),
    startRollout: (uuid: string, steps: RolloutStep[]): Promise<Rollout> => call((cb) => rollouts.startRollout({ uuid, steps, etag: '', gates: undefined }, md(), cb)),
    advanceRollout: (uuid: string): Promise<Rollout> => call((cb) => rollouts.advanceRollout({ uuid, etag: '' }, md(), cb)),
    close(): void {
      for (const c of [accounts, devices, tokens, habits, rollouts]) c.close();
    },
  };
}
