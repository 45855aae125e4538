import { randomInt, randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateAccountRequest, Gender } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { IssueDaemonTokenRequest } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { BindAccountRequest, CreateDeviceRequest } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import {
  CreateHabitRequest,
  DeleteHabitRequest,
  ShapeType,
  UpdateHabitRequest,
  type Habit,
  type Pixel,
  type Shape,
} from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { CheckVersionRequest, createDaemonClient, type CheckVersionResponse, type DaemonServiceClient } from '@titanbot/daemon-client';
import { resolveToken } from './client.js';
import { AdminApi, forEachBounded, Progress } from './demo-admin.js';
import { DemoDaemon } from './demo-daemon.js';
import { apiKeyMetadata, unaryCall } from '@titanbot/service-kit/grpc-client';

const USAGE = `Usage: npm run demo -- [--server HOST:PORT] [--read-server HOST:PORT] [--token TOKEN]
  [--devices 50] [--accounts 200] [--habits 5000] [--daemons 10] [--global-share 0.1] [--concurrency 16]

Loads a demo fleet through the admin API of a running \`npm start\`, runs --daemons
\`titanbot-daemon sync --watch\` processes, makes a few admin changes and reports how fast each
daemon got its new file. The admin token comes from --token, TITANBOT_ADMIN_TOKEN, or the file
secret store under DATA_DIR (default .data). Exit code 0 only if every daemon ends current.`;

const ACCOUNTS_PER_DEVICE = 4;
const PIXEL_POOL = 300;
const SHAPE_POOL = 100;
const FIRST_FILE_TIMEOUT_MS = 120_000;
const CHANGE_TIMEOUT_MS = 60_000;
const FINAL_CHECK_TIMEOUT_MS = 10_000;
const CHECK_DEADLINE_MS = 10_000;
/** Ids this high stay clear of hand-made fleets; the random base keeps repeated runs apart. */
const ID_BASE_MIN = 100_000_000;
const ID_BASE_MAX = 2_000_000_000;

interface Options {
  server: string;
  readServer: string;
  token: string | undefined;
  devices: number;
  accounts: number;
  habits: number;
  daemons: number;
  globalShare: number;
  concurrency: number;
}

/** One admin change and the daemons whose scope it touches. */
interface Change {
  label: string;
  affected: DemoDaemon[];
  run: () => Promise<unknown>;
}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      server: { type: 'string', default: '127.0.0.1:50051' },
      'read-server': { type: 'string', default: '127.0.0.1:50052' },
      token: { type: 'string' },
      devices: { type: 'string', default: '50' },
      accounts: { type: 'string', default: '200' },
      habits: { type: 'string', default: '5000' },
      daemons: { type: 'string', default: '10' },
      'global-share': { type: 'string', default: '0.1' },
      concurrency: { type: 'string', default: '16' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const count = (name: keyof typeof values, min: number): number => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  const options = {
    server: values.server,
    readServer: values['read-server'],
    token: values.token,
    devices: count('devices', 1),
    accounts: count('accounts', 1),
    habits: count('habits', 0),
    daemons: count('daemons', 1),
    globalShare: Number(values['global-share']),
    concurrency: count('concurrency', 1),
  };
  if (options.daemons > options.devices) throw new Error('--daemons must not exceed --devices');
  if (!(options.globalShare >= 0 && options.globalShare <= 1)) throw new Error('--global-share must be in 0..1');
  return options;
}

/** `k` distinct entries of `pool` (k <= pool.length), so a habit never lists one twice. */
function sample<T>(pool: readonly T[], k: number): T[] {
  const picked = new Set<number>();
  while (picked.size < k) picked.add(randomInt(pool.length));
  return [...picked].map((i) => pool[i] as T);
}

/** Fixed pools (same on every run), so pixels and shapes are shared within and across runs. */
const pixelPool: Pixel[] = Array.from({ length: PIXEL_POOL }, (_, i) => ({
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

/** The latest version of a daemon's scope, asked of the read service with that daemon's token. */
function checkVersion(client: DaemonServiceClient, daemon: DemoDaemon): Promise<CheckVersionResponse> {
  const request = CheckVersionRequest.fromPartial({ logicalId: daemon.identity.logicalId, knownVersion: daemon.version });
  return unaryCall(client, client.checkVersion, request, apiKeyMetadata(daemon.identity.token), { deadline: Date.now() + CHECK_DEADLINE_MS });
}

/**
 * Waits until `daemon` holds the read service's latest version of its scope, following its
 * installs while it catches up. Resolves with whether it got there within `timeoutMs` (false at
 * once if the daemon has exited).
 */
async function settle(client: DaemonServiceClient, daemon: DemoDaemon, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await checkVersion(client, daemon)).changed) return true;
    try {
      await daemon.install(daemon.installs.length, deadline - Date.now());
    } catch {
      return false;
    }
  }
  return false;
}

const fmt = (n: number): string => n.toLocaleString('en-US');
const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Runs the demo; resolves with the exit code (0 only if every daemon ends on its scope's latest version). */
export async function runDemo(argv: string[]): Promise<number> {
  let options: Options | 'help';
  try {
    options = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`demo: ${messageOf(err)}\n\n${USAGE}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const o = options;
  let token: string;
  try {
    token = await resolveToken(o.token, process.env);
  } catch (err) {
    process.stderr.write(`demo: ${messageOf(err)}\n`);
    return 1;
  }
  const api = new AdminApi(o.server, token);
  const reader = createDaemonClient(o.readServer);
  const daemons: DemoDaemon[] = [];
  let starting: Promise<unknown> = Promise.resolve();
  let stopping: Promise<void> | undefined;
  // Ctrl-C must leave no daemon or temp folder behind, even one still starting: wait for those first.
  const stop = (): Promise<void> =>
    (stopping ??= starting
      .catch(() => undefined)
      .then(() => Promise.all(daemons.map((d) => d.stop())))
      .then(() => (api.close(), reader.close())));
  const onSignal = (): void => void stop().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // --- Load -------------------------------------------------------------------------------
    const logicalBase = randomInt(ID_BASE_MIN, ID_BASE_MAX - o.accounts);
    const physicalBase = randomInt(ID_BASE_MIN, ID_BASE_MAX - o.devices);
    const logicalIds = Array.from({ length: o.accounts }, (_, i) => logicalBase + i);
    const physicalIds = Array.from({ length: o.devices }, (_, i) => physicalBase + i);
    const loadStart = performance.now();
    const phase = (label: string, total: number): Progress => new Progress(label, total, api);

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

    // --- Daemons ----------------------------------------------------------------------------
    const fleet = physicalIds.slice(0, o.daemons);
    const tokens = new Map<number, string>();
    await forEachBounded(fleet, o.concurrency, phase('tokens', fleet.length), async (physicalId) => {
      const issued = await api.call(api.tokens, api.tokens.issueDaemonToken, IssueDaemonTokenRequest.fromPartial({ deviceUuid: deviceUuids.get(physicalId)! }));
      tokens.set(physicalId, issued.token);
    });
    const started = performance.now();
    starting = Promise.all(fleet.map(async (physicalId, i) => {
      const daemon = await DemoDaemon.start({ physicalId, logicalId: accountsOf(i)[0]!, token: tokens.get(physicalId)! }, o.readServer);
      daemons.push(daemon);
    }));
    await starting;
    daemons.sort((a, b) => a.identity.physicalId - b.identity.physicalId);
    await Promise.all(daemons.map((d) => d.install(0, FIRST_FILE_TIMEOUT_MS)));
    // The read replica may still be applying the load's tail: start measuring only once all are current.
    await Promise.all(daemons.map((d) => settle(reader, d, FIRST_FILE_TIMEOUT_MS)));
    process.stdout.write(`${daemons.length} daemons installed their first file in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);

    // --- Changes ----------------------------------------------------------------------------
    const inScope = (logicalIds: number[]): DemoDaemon[] => daemons.filter((d) => logicalIds.includes(d.identity.logicalId));
    const createScopes = [...new Set(daemons.slice(0, 3).map((d) => d.identity.logicalId))];
    const created: Habit[] = [];
    const globalHabit = habits.find((h) => h.accountLogicalId === undefined);
    const lastScope = daemons.at(-1)!.identity.logicalId;
    // Each change is planned just before it runs, so the last one can fall back on the first's habit.
    const plans: (() => Change)[] = [
      () => ({
        label: `create a habit in scope${createScopes.length > 1 ? 's' : ''} ${createScopes.join(', ')}`,
        affected: inScope(createScopes),
        run: () => Promise.all(createScopes.map(async (accountLogicalId) => {
          const habit = { accountLogicalId, action: 'demo-change', pixels: sample(pixelPool, 2) };
          created.push(await api.call(api.habits, api.habits.createHabit, CreateHabitRequest.fromPartial({ habit, requestId: randomUUID() })));
        })),
      }),
      () => globalHabit
        ? {
            label: 'update a global habit (every scope)',
            affected: daemons,
            run: () => api.call(api.habits, api.habits.updateHabit, UpdateHabitRequest.fromPartial({ habit: { uuid: globalHabit.uuid, priority: 1_000 }, updateMask: ['priority'] })),
          }
        : {
            label: 'create a global habit (every scope)',
            affected: daemons,
            run: () => api.call(api.habits, api.habits.createHabit, CreateHabitRequest.fromPartial({ habit: { action: 'demo-global' }, requestId: randomUUID() })),
          },
      () => {
        // Preferably a daemon the first change left alone.
        const doomed = habits.find((h) => h.accountLogicalId === lastScope) ?? created[0]!;
        return {
          label: `delete a habit of scope ${doomed.accountLogicalId}`,
          affected: inScope([doomed.accountLogicalId!]),
          run: () => api.call(api.habits, api.habits.deleteHabit, DeleteHabitRequest.fromPartial({ uuid: doomed.uuid })),
        };
      },
    ];
    const changes: Change[] = [];
    const latency = new Map<DemoDaemon, (number | undefined)[]>(daemons.map((d) => [d, []]));
    for (const [c, plan] of plans.entries()) {
      const change = plan();
      changes.push(change);
      const before = new Map(daemons.map((d) => [d, d.installs.length]));
      const at = Date.now();
      await change.run();
      await Promise.all(change.affected.map(async (d) => {
        const install = await d.install(before.get(d)!, CHANGE_TIMEOUT_MS).catch(() => undefined);
        latency.get(d)![c] = install && install.at - at;
      }));
      const got = change.affected.filter((d) => latency.get(d)![c] !== undefined).length;
      process.stdout.write(`C${c + 1} ${new Date(at).toISOString()} ${change.label}: ${got}/${change.affected.length} daemons got a new file\n`);
    }

    // --- Report -----------------------------------------------------------------------------
    const current = await Promise.all(daemons.map((d) => settle(reader, d, FINAL_CHECK_TIMEOUT_MS)));
    const header = ['device', 'scope', 'version', 'habits', ...changes.map((_, c) => `C${c + 1} ms`), 'current'];
    const rows = daemons.map((d, i) => [
      String(d.identity.physicalId),
      String(d.identity.logicalId),
      d.version,
      fmt(d.habitCount()),
      ...changes.map((change, c) => (!change.affected.includes(d) ? '-' : (latency.get(d)![c]?.toString() ?? 'timeout'))),
      current[i] ? 'yes' : 'NO',
    ]);
    const widths = header.map((h, col) => Math.max(h.length, ...rows.map((r) => r[col]!.length)));
    const line = (cells: string[]): string => cells.map((cell, col) => (col < 3 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  ');
    process.stdout.write(
      `\n${line(header)}\n${rows.map(line).join('\n')}\n\n` +
        'Cn ms: from just before the admin call to the "time" of the daemon\'s next "installed" event (daemon clock, same host); ' +
        "'-' = change outside the daemon's scope.\n" +
        `current: installed version equals CheckVersion of the scope on ${o.readServer}; ${current.filter(Boolean).length}/${daemons.length} current.\n`,
    );
    return current.every(Boolean) && changes.every((ch, c) => ch.affected.every((d) => latency.get(d)![c] !== undefined)) ? 0 : 1;
  } catch (err) {
    // After Ctrl-C, calls fail because their channels closed: that is not worth reporting.
    if (!stopping) process.stderr.write(`demo: ${messageOf(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runDemo(process.argv.slice(2));
}
