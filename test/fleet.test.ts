import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DeviceState, FleetServiceClient, GetFleetSummaryRequest, ListDeviceStatusChangesRequest, ListDeviceStatusesRequest, type DeviceStatus } from '@titanbot/contracts/titanbot/admin/v1/fleet_service';
import { InstallFailure } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DaemonSync } from '@titanbot/daemon-client';
import { adminApi, uniquePixel } from '@titanbot/read/test-support/admin';
import { checkVersion } from '@titanbot/read/test-support/daemon';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';
import { call, failure, uniqueInt } from '@titanbot/write/test-support/harness';
import { status } from '@grpc/grpc-js';
import { TestClock } from '@titanbot/write/test-support/test-clock';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DAEMON_BIN = path.join(ROOT, 'packages/daemon-client/bin/titanbot-daemon.js');
const DAEMONS = 50;
/** Both services read this clock: OFFLINE_AFTER is reached by moving it, not by waiting. */
const clock = new TestClock();

let sys: System;
let replicas: Replica[];
let api: ReturnType<typeof adminApi>;
let fleet: FleetServiceClient;
let logicalId: number;
let dir: string;
/** A device of the scope with its daemon token. */
const provision = async (): Promise<{ uuid: string; token: string }> => {
  const device = await api.createDevice();
  await api.bind(device.uuid, logicalId);
  return { uuid: device.uuid, token: (await api.issueToken(device.uuid)).token };
};
const summary = () => call(fleet, fleet.getFleetSummary, GetFleetSummaryRequest.fromPartial({ logicalId }), sys.write.adminToken);
const statusOf = async (uuid: string): Promise<DeviceStatus | undefined> => {
  const all: DeviceStatus[] = [];
  let pageToken = '';
  do {
    const page = await call(fleet, fleet.listDeviceStatuses, ListDeviceStatusesRequest.fromPartial({ logicalId, pageSize: 1000, pageToken }), sys.write.adminToken);
    all.push(...page.deviceStatuses);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return all.find((s) => s.deviceUuid === uuid);
};

beforeAll(async () => {
  sys = await startSystem({ OFFLINE_AFTER: '5s' }, clock);
  const replicaEnv = { STATUS_REPORT_INTERVAL: '100ms', STATUS_CONTACT_REFRESH: '1s' };
  replicas = [await sys.startReplica(replicaEnv, undefined, clock), await sys.startReplica(replicaEnv, undefined, clock)];
  api = adminApi(sys.write);
  fleet = sys.write.client(FleetServiceClient);
  logicalId = uniqueInt();
  await api.createAccount(logicalId);
  await api.createHabit({ accountLogicalId: logicalId, action: 'first', pixels: [uniquePixel()] });
  dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-fleet-'));
  await chmod(dir, 0o755);
  await promisify(execFile)('npx', ['tsc', '-b', 'packages/daemon-client'], { cwd: ROOT });
}, 120_000);
afterAll(async () => {
  await sys?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the fleet view', () => {
  const watchers: { uuid: string; stop: AbortController; done: Promise<void>; sync: DaemonSync }[] = [];
  afterAll(async () => {
    for (const w of watchers) w.stop.abort();
    await Promise.all(watchers.map((w) => w.done));
    for (const w of watchers) w.sync.close();
  });

  it(`shows ${DAEMONS} daemons on two replicas current, and current again after a global change`, async () => {
    for (let i = 0; i < DAEMONS; i++) {
      const { uuid, token } = await provision();
      const home = path.join(dir, `daemon-${i}`);
      await mkdir(home);
      await writeFile(path.join(home, 'token'), `${token}\n`, { mode: 0o600 });
      if (i === 0) {
        // The first daemon's first contact, holding no file, is reported before it syncs: its
        // history then starts with it whatever the timing of the reports.
        await replicas[0]!.synced();
        await checkVersion(replicas[0]!.daemon(), token, logicalId);
        await vi.waitFor(async () => expect((await statusOf(uuid))?.heldVersion).toBe(''), { timeout: 10_000, interval: 50 });
      }
      const sync = new DaemonSync({ server: replicas[i % 2]!.service.address, tokenFile: path.join(home, 'token'), dbPath: path.join(home, 'titanbotd.sqlite'), logicalId });
      const stop = new AbortController();
      watchers.push({ uuid, stop, sync, done: sync.watch(stop.signal) });
    }
    await vi.waitFor(async () => expect(await summary()).toMatchObject({ devices: DAEMONS, current: DAEMONS, behind: 0, failing: 0, offline: 0 }), { timeout: 20_000, interval: 100 });
    const before = (await statusOf(watchers[0]!.uuid))!.currentVersion;

    // A global habit: every scope's version moves, so every daemon has to download again.
    await api.createHabit({ action: 'global change', pixels: [uniquePixel()] });
    await vi.waitFor(
      async () => {
        const s = await statusOf(watchers[0]!.uuid);
        expect(s?.currentVersion).not.toBe(before);
        expect(await summary()).toMatchObject({ devices: DAEMONS, current: DAEMONS });
      },
      { timeout: 20_000, interval: 100 },
    );
    const replicaNames = new Set(await Promise.all(watchers.map(async (w) => (await statusOf(w.uuid))!.replica)));
    expect(replicaNames).toEqual(new Set(replicas.map((r) => r.service.address)));

    // Its history, newest first: its first contact holding no file, the first version it installed, the one after the change.
    const now = (await statusOf(watchers[0]!.uuid))!;
    const history = await call(fleet, fleet.listDeviceStatusChanges, ListDeviceStatusChangesRequest.fromPartial({ deviceUuid: watchers[0]!.uuid }), sys.write.adminToken);
    expect(history.deviceStatusChanges.map((c) => [c.heldVersion, c.logicalId, c.replica])).toEqual([
      [now.currentVersion, logicalId, now.replica],
      [before, logicalId, now.replica],
      ['', logicalId, now.replica],
    ]);
    expect(await failure(call(fleet, fleet.listDeviceStatusChanges, ListDeviceStatusChangesRequest.fromPartial({ deviceUuid: 'not-a-uuid' }), sys.write.adminToken))).toMatchObject({
      code: status.INVALID_ARGUMENT,
    });
  });

  it('shows a daemon whose database folder is read-only as failing, with the reason', async () => {
    const { uuid, token } = await provision();
    const home = path.join(dir, 'read-only');
    await mkdir(home);
    await writeFile(path.join(home, 'token'), `${token}\n`, { mode: 0o600 });
    await chmod(home, 0o555);
    const args = [DAEMON_BIN, 'sync', '--once', '--timeout', '0', '--server', replicas[0]!.service.address, '--token-file', path.join(home, 'token'), '--db', path.join(home, 'titanbotd.sqlite'), '--logical-id', String(logicalId)];
    // Root writes anywhere: as root, the daemon runs without the capabilities that let it (it
    // still reads the checkout it owns, which another user could not in a private folder).
    const asRoot = process.getuid?.() === 0;
    const child = asRoot
      ? spawn('setpriv', ['--bounding-set=-dac_override,-dac_read_search', process.execPath, ...args], { cwd: ROOT, stdio: 'ignore' })
      : spawn(process.execPath, args, { cwd: ROOT, stdio: 'ignore' });
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(1);
    await vi.waitFor(async () => expect(await statusOf(uuid)).toMatchObject({ state: DeviceState.DEVICE_STATE_FAILING, failure: InstallFailure.INSTALL_FAILURE_PERMISSION }), {
      timeout: 10_000,
      interval: 100,
    });
    expect((await statusOf(uuid))!.failureMessage).toMatch(/EACCES|permission/i);
    expect(await summary()).toMatchObject({ failing: 1 });
  });

  it('shows a watching daemon whose database path cannot be used as failing, and keeps it retrying', async () => {
    const { uuid, token } = await provision();
    const home = path.join(dir, 'not-a-folder');
    await mkdir(home);
    await writeFile(path.join(home, 'token'), `${token}\n`, { mode: 0o600 });
    // The database's parent is a file: every access to its state is ENOTDIR.
    await writeFile(path.join(home, 'file'), 'not a folder');
    const args = [DAEMON_BIN, 'sync', '--watch', '--server', replicas[0]!.service.address, '--token-file', path.join(home, 'token'), '--db', path.join(home, 'file', 'titanbotd.sqlite'), '--logical-id', String(logicalId)];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      await vi.waitFor(async () => expect(await statusOf(uuid)).toMatchObject({ state: DeviceState.DEVICE_STATE_FAILING, failure: InstallFailure.INSTALL_FAILURE_OTHER }), {
        timeout: 10_000,
        interval: 100,
      });
      expect((await statusOf(uuid))!.failureMessage).toMatch(/ENOTDIR/);
      expect(out).toContain('"event":"held-unreadable"');
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it('shows a stopped daemon as offline once OFFLINE_AFTER has passed, while watching ones stay current', async () => {
    const stopped = watchers.pop()!;
    stopped.stop.abort();
    await stopped.done;
    stopped.sync.close();
    clock.advance(6_000);
    await vi.waitFor(async () => expect(await statusOf(stopped.uuid)).toMatchObject({ state: DeviceState.DEVICE_STATE_OFFLINE }), { timeout: 10_000, interval: 100 });
    await vi.waitFor(async () => expect(await summary()).toMatchObject({ current: DAEMONS - 1 }), { timeout: 10_000, interval: 100 });
  });
});
