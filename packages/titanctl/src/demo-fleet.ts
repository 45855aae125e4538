import { randomInt, randomUUID } from 'node:crypto';
import { CreateAccountRequest, Gender } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { BindAccountRequest, CreateDeviceRequest } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { CreateHabitRequest, ShapeType, type Habit, type Pixel, type Shape } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { forEachBounded, type AdminApi, type Progress } from './demo-admin.js';

const ACCOUNTS_PER_DEVICE = 4;
const PIXEL_POOL = 300;
const SHAPE_POOL = 100;
/** Ids this high stay clear of hand-made fleets; the random base keeps repeated runs apart. */
const ID_BASE_MIN = 100_000_000;
const ID_BASE_MAX = 2_000_000_000;

/** How big a fleet to load, and how many admin calls at once. */
export interface FleetSize {
  devices: number;
  accounts: number;
  habits: number;
  /** Share of habits (0..1) that are global. */
  globalShare: number;
  concurrency: number;
}

/** What `loadFleet` created. */
export interface Fleet {
  logicalIds: number[];
  physicalIds: number[];
  /** Device uuid by physical id. */
  deviceUuids: Map<number, string>;
  habits: Habit[];
  /** The logical ids of the accounts bound to the i-th device. */
  accountsOf: (device: number) => number[];
}

/** `k` distinct entries of `pool` (k <= pool.length), so a habit never lists one twice. */
export function sample<T>(pool: readonly T[], k: number): T[] {
  const picked = new Set<number>();
  while (picked.size < k) picked.add(randomInt(pool.length));
  return [...picked].map((i) => pool[i] as T);
}

/** Fixed pools (same on every run), so pixels and shapes are shared within and across runs. */
export const pixelPool: Pixel[] = Array.from({ length: PIXEL_POOL }, (_, i) => ({
  x: 1 + (i % 20) * 50,
  y: 1 + Math.floor(i / 20) * 40,
  rgbHex: ((i * 2_654_435_761) >>> 8).toString(16).padStart(6, '0').slice(-6),
  deviation: i % 4,
}));
const shapePool: Shape[] = Array.from({ length: SHAPE_POOL }, (_, i) => ({
  type: [ShapeType.SHAPE_TYPE_RECTANGLE, ShapeType.SHAPE_TYPE_CIRCLE, ShapeType.SHAPE_TYPE_TRIANGLE, ShapeType.SHAPE_TYPE_IRREGULAR][i % 4]!,
  x: 10 + i * 7,
  y: 20 + (i % 10) * 30,
  width: 16 + (i % 5) * 8,
  height: 16 + (i % 3) * 8,
  size: 1 + (i % 6),
  rgbHex: ((i * 40_503 + 0x123456) & 0xffffff).toString(16).padStart(6, '0'),
}));

/** A count with thousands separators. */
export const fmt = (n: number): string => n.toLocaleString('en-US');

/**
 * Loads a demo fleet through the admin API: accounts, devices, 4 bindings per device, habits with
 * pixels and shapes drawn from fixed pools; prints what it loaded and the admin call rate.
 */
export async function loadFleet(api: AdminApi, o: FleetSize, phase: (label: string, total: number) => Progress): Promise<Fleet> {
  const logicalBase = randomInt(ID_BASE_MIN, ID_BASE_MAX - o.accounts);
  const physicalBase = randomInt(ID_BASE_MIN, ID_BASE_MAX - o.devices);
  const logicalIds = Array.from({ length: o.accounts }, (_, i) => logicalBase + i);
  const physicalIds = Array.from({ length: o.devices }, (_, i) => physicalBase + i);
  const loadStart = performance.now();

  await forEachBounded(logicalIds, o.concurrency, phase('accounts', o.accounts), (logicalId) =>
    api.call(api.accounts, api.accounts.createAccount, CreateAccountRequest.fromPartial({
      account: {
        logicalId,
        firstName: 'Demo',
        lastName: `Account ${logicalId}`,
        birthDate: new Date('1990-01-01T00:00:00Z'),
        gender: Gender.GENDER_FEMALE,
        googleLogin: `demo${logicalId}@example.com`,
        googlePassword: randomUUID(),
      },
      requestId: randomUUID(),
    })).then(() => undefined));

  const deviceUuids = new Map<number, string>();
  await forEachBounded(physicalIds, o.concurrency, phase('devices', o.devices), async (physicalId) => {
    const device = await api.call(api.devices, api.devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId }, requestId: randomUUID() }));
    deviceUuids.set(physicalId, device.uuid);
  });

  // Device i gets accounts 4i..4i+3 (wrapping when there are fewer accounts); the last bound is current.
  const accountsOf = (device: number): number[] =>
    Array.from({ length: ACCOUNTS_PER_DEVICE }, (_, k) => logicalIds[(device * ACCOUNTS_PER_DEVICE + k) % o.accounts]!);
  const bindings = physicalIds.flatMap((physicalId, i) => accountsOf(i).map((logicalId) => ({ deviceUuid: deviceUuids.get(physicalId)!, logicalId })));
  await forEachBounded(bindings, o.concurrency, phase('bindings', bindings.length), (b) =>
    api.call(api.devices, api.devices.bindAccount, BindAccountRequest.fromPartial(b)).then(() => undefined));

  const habits: Habit[] = [];
  let pixelRefs = 0;
  let shapeRefs = 0;
  const specs = Array.from({ length: o.habits }, (_, i): Partial<Habit> => {
    const pixels = sample(pixelPool, randomInt(1, 4));
    const shapes = sample(shapePool, randomInt(0, 3));
    pixelRefs += pixels.length;
    shapeRefs += shapes.length;
    const global = Math.random() < o.globalShare;
    return {
      ...(global ? {} : { accountLogicalId: logicalIds[randomInt(o.accounts)]! }),
      priority: randomInt(100),
      action: `tap-${i}`,
      comment: `demo habit ${i}`,
      postTimeoutMs: 500,
      pixels,
      shapes,
    };
  });
  await forEachBounded(specs, o.concurrency, phase('habits', o.habits), async (habit) => {
    habits.push(await api.call(api.habits, api.habits.createHabit, CreateHabitRequest.fromPartial({ habit, requestId: randomUUID() })));
  });
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const loadCalls = api.calls;
  const globals = habits.filter((h) => h.accountLogicalId === undefined).length;
  process.stdout.write(
    `Loaded ${fmt(o.accounts)} accounts (logical ids ${logicalBase}..), ${fmt(o.devices)} devices (physical ids ${physicalBase}..), ` +
      `${fmt(bindings.length)} bindings, ${fmt(habits.length)} habits (${fmt(globals)} global) with ${fmt(pixelRefs)} pixel and ` +
      `${fmt(shapeRefs)} shape references drawn from pools of ${PIXEL_POOL} and ${SHAPE_POOL}\n` +
      `Load: ${fmt(loadCalls)} admin calls in ${loadSeconds.toFixed(1)} s = ${(loadCalls / loadSeconds).toFixed(0)} calls/s (concurrency ${o.concurrency})\n`,
  );
  return { logicalIds, physicalIds, deviceUuids, habits, accountsOf };
}
