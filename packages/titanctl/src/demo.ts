import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { IssueDaemonTokenRequest } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import {
  CreateHabitRequest,
  DeleteHabitRequest,
  UpdateHabitRequest,
  type Habit,
} from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { CheckVersionRequest, createDaemonClient, type CheckVersionResponse, type DaemonServiceClient } from '@titanbot/daemon-client';
import { resolveToken } from './client.js';
import { AdminApi, forEachBounded, Progress } from './demo-admin.js';
import { DemoDaemon } from './demo-daemon.js';
import { fmt, loadFleet, pixelPool, sample } from './demo-fleet.js';
import { apiKeyMetadata, unaryCall } from '@titanbot/service-kit/grpc-client';

const USAGE = `Usage: npm run demo -- [--server HOST:PORT] [--read-server HOST:PORT] [--token TOKEN]
  [--devices 50] [--accounts 200] [--habits 5000] [--daemons 10] [--global-share 0.1] [--concurrency 16]

Loads a demo fleet through the admin API of a running \`npm start\`, runs --daemons
\`titanbot-daemon sync --watch\` processes, makes a few admin changes and reports how fast each
daemon got its new file. The admin token comes from --token, TITANBOT_ADMIN_TOKEN, or the file
secret store under DATA_DIR (default .data). Exit code 0 only if every daemon ends current.`;

const FIRST_FILE_TIMEOUT_MS = 120_000;
const CHANGE_TIMEOUT_MS = 60_000;
const FINAL_CHECK_TIMEOUT_MS = 10_000;
const CHECK_DEADLINE_MS = 10_000;

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
    const phase = (label: string, total: number): Progress => new Progress(label, total, api);
    const { physicalIds, deviceUuids, habits, accountsOf } = await loadFleet(api, o, phase);

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
