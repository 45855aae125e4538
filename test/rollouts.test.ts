import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { GateAction, RolloutServiceClient, RolloutState, type Rollout, type RolloutChange, type RolloutGates, type RolloutStep } from '@titanbot/contracts/titanbot/admin/v1/rollout_service';
import { AuditServiceClient, ListAuditEventsRequest } from '@titanbot/contracts/titanbot/admin/v1/audit_service';
import { DeviceState, FleetServiceClient, ListDeviceStatusesRequest } from '@titanbot/contracts/titanbot/admin/v1/fleet_service';
import { DaemonSync } from '@titanbot/daemon-client';
import { inCohort } from '@titanbot/service-kit/cohort';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { TestClock } from '@titanbot/write/test-support/test-clock';
import { adminApi, uniquePixel } from '@titanbot/read/test-support/admin';
import { checkVersion } from '@titanbot/read/test-support/daemon';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';
import { call, errorDetails } from '@titanbot/write/test-support/harness';

// Staged rollouts end to end (docs/decisions.md "Staged rollouts"): the write service records and
// moves a rollout, a replica gives each device the stable or the candidate content by its cohort,
// and unchanged daemons (DaemonSync) install whatever they are given. On their own database: an
// open rollout holds its scope, and the assertions name every habit a daemon database holds.

const DEVICES = 24;
const clock = new TestClock();
let sys: System;
let replica: Replica;
let api: ReturnType<typeof adminApi>;
let rollouts: RolloutServiceClient;
let logicalId: number;
let devices: { uuid: string; token: string }[];
let dir: string;

beforeAll(async () => {
  // Gates are checked every 50 ms of real time against the test clock; replicas report every 100 ms.
  sys = await startSystem({ DATABASE_URL: inject('rolloutDatabaseUrl'), ROLLOUT_GATE_INTERVAL: '50ms' }, clock);
  api = adminApi(sys.write);
  rollouts = sys.write.client(RolloutServiceClient);
  logicalId = (await api.createAccount()).logicalId;
  devices = [];
  for (let i = 0; i < DEVICES; i++) {
    const device = await api.createDevice();
    await api.bind(device.uuid, logicalId);
    devices.push({ uuid: device.uuid, token: (await api.issueToken(device.uuid)).token });
  }
  replica = await sys.startReplica({ STATUS_REPORT_INTERVAL: '100ms' }, undefined, clock);
  await replica.service.consumer.caughtUp;
  dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-rollouts-'));
});
afterAll(async () => {
  await sys?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const key = (): string => sys.write.adminToken;
const create = (changes: RolloutChange[]): Promise<Rollout> => call(rollouts, rollouts.createRollout, { changes, description: 'test', requestId: '', validateOnly: false }, key());
const start = (uuid: string, steps: Partial<RolloutStep>[], gates?: RolloutGates): Promise<Rollout> =>
  call(rollouts, rollouts.startRollout, { uuid, etag: '', gates, steps: steps.map((s) => ({ percent: 0, deviceUuids: [], minDuration: undefined, ...s })) }, key());
const get = (uuid: string): Promise<Rollout> => call(rollouts, rollouts.getRollout, { uuid }, key());
const advance = (uuid: string): Promise<Rollout> => call(rollouts, rollouts.advanceRollout, { uuid, etag: '' }, key());
const abort = (uuid: string): Promise<Rollout> => call(rollouts, rollouts.abortRollout, { uuid, etag: '' }, key());
const updateComment = (uuid: string, comment: string): RolloutChange => ({ change: { $case: 'update', value: { habit: { uuid, comment, pixels: [], shapes: [], etag: '' }, updateMask: ['comment'] } } });

/** Every device's CheckVersion answer, in `devices` order, after the replica has applied every commit. */
async function versions(): Promise<string[]> {
  await replica.synced();
  return Promise.all(devices.map((d) => checkVersion(replica.daemon(), d.token, logicalId).then((r) => r.version)));
}

/** The comments of the habits in the daemon database at `file`, sorted. */
function comments(file: string): string[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('select comment from habits where comment is not null order by comment').pluck().all() as string[]);
  } finally {
    db.close();
  }
}

/** A DaemonSync for device `i` writing to its own file; `installs` collects its `installed` events. */
async function daemonOf(i: number): Promise<{ sync: DaemonSync; dbPath: string; installs: Record<string, unknown>[] }> {
  const tokenFile = path.join(dir, `token-${i}.txt`);
  await writeFile(tokenFile, `${devices[i]!.token}\n`, { mode: 0o600 });
  const installs: Record<string, unknown>[] = [];
  const dbPath = path.join(dir, `device-${i}.sqlite`);
  const sync = new DaemonSync({ server: replica.service.address, tokenFile, dbPath, logicalId, logger: (event, fields) => event === 'installed' && installs.push(fields) });
  return { sync, dbPath, installs };
}

async function refusal(promise: Promise<unknown>): Promise<{ code: number; reason: string; fields: string[] }> {
  const err = (await promise.then(
    () => undefined,
    (e: unknown) => e,
  )) as ServiceError | undefined;
  if (!err) throw new Error('the call succeeded');
  return { code: err.code, ...errorDetails(err) };
}

describe('a staged rollout of habit changes', () => {
  it('reaches its named canary first, holds its habits and its scope, and is re-based on ordinary writes', async () => {
    const kept = await api.createHabit({ accountLogicalId: logicalId, comment: 'stable', pixels: [uniquePixel()] });
    const other = await api.createHabit({ accountLogicalId: logicalId, comment: 'other', pixels: [uniquePixel()] });
    await replica.synced();
    const stable = await versions();
    expect(new Set(stable).size).toBe(1);

    const rollout = await create([
      updateComment(kept.uuid, 'candidate'),
      { change: { $case: 'create', value: { habit: { accountLogicalId: logicalId, comment: 'new in rollout', pixels: [uniquePixel()], shapes: [], etag: '', uuid: '' }, requestId: '', habitId: '', validateOnly: false } } },
    ]);
    expect(rollout).toMatchObject({ state: RolloutState.ROLLOUT_STATE_CREATED, accountLogicalId: logicalId, habitUuids: [kept.uuid, expect.any(String)] });
    // Its habits are held, and so is its scope; nothing reaches a daemon before it starts.
    expect(await refusal(api.updateHabit({ uuid: kept.uuid, comment: 'ordinary' }, ['comment']))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: 'ROLLOUT_IN_PROGRESS' });
    expect(await refusal(create([updateComment(other.uuid, 'second rollout')]))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: 'ROLLOUT_IN_PROGRESS' });
    expect(await refusal(create([updateComment(other.uuid, 'x'), updateComment(other.uuid, 'y')]))).toMatchObject({ reason: 'INVALID_ARGUMENT' });
    await replica.synced();
    expect(await versions()).toEqual(stable);

    // Step 0: one named canary; step 1: half the devices; step 2: all. The first step cannot be left before its min_duration.
    const canary = 0;
    const steps = [{ percent: 0, deviceUuids: [devices[canary]!.uuid], minDuration: { seconds: 3600, nanos: 0 } }, { percent: 50 }, { percent: 100 }];
    await start(rollout.uuid, steps);
    expect(await refusal(advance(rollout.uuid))).toMatchObject({ code: status.FAILED_PRECONDITION, reason: 'ROLLOUT_STEP_NOT_DUE' });
    await replica.synced();
    const atStep0 = await versions();
    const candidate = atStep0[canary]!;
    expect(candidate).not.toBe(stable[0]);
    expect(atStep0.filter((v) => v === candidate)).toHaveLength(1);

    // The canary's daemon installs the candidate: the stable content with the rollout's changes.
    const canaryDaemon = await daemonOf(canary);
    const bystander = await daemonOf(1);
    try {
      await canaryDaemon.sync.syncOnce();
      await bystander.sync.syncOnce();
      expect(comments(canaryDaemon.dbPath)).toEqual(['candidate', 'new in rollout', 'other']);
      expect(comments(bystander.dbPath)).toEqual(['other', 'stable']);

      // An ordinary write to another habit of the scope reaches both: the candidate is re-based on it.
      await api.updateHabit({ uuid: other.uuid, comment: 'other, edited' }, ['comment']);
      await replica.synced();
      await canaryDaemon.sync.syncOnce();
      await bystander.sync.syncOnce();
      expect(comments(canaryDaemon.dbPath)).toEqual(['candidate', 'new in rollout', 'other, edited']);
      expect(comments(bystander.dbPath)).toEqual(['other, edited', 'stable']);
    } finally {
      canaryDaemon.sync.close();
      bystander.sync.close();
    }
  });

  it('moves devices into the cohort by their place, never out, and completes as ordinary habit rows', async () => {
    const habit = await api.createHabit({ accountLogicalId: logicalId, comment: 'before', pixels: [uniquePixel()] });
    // The first test's rollout is still open in this scope: end it first.
    const open = await call(rollouts, rollouts.listRollouts, { pageSize: 10, pageToken: '', state: RolloutState.ROLLOUT_STATE_RUNNING }, key());
    for (const r of open.rollouts.filter((o) => o.accountLogicalId === logicalId)) await abort(r.uuid);
    await replica.synced();
    const stable = (await versions())[0]!;

    const rollout = await create([updateComment(habit.uuid, 'after')]);
    const steps = [{ percent: 10 }, { percent: 60 }, { percent: 100 }];
    let members = new Set<number>();
    for (let step = 0; step < steps.length; step++) {
      const moved = step === 0 ? await start(rollout.uuid, steps) : await advance(rollout.uuid);
      expect(moved).toMatchObject({ state: RolloutState.ROLLOUT_STATE_RUNNING, currentStep: step });
      await replica.synced();
      const now = await versions();
      const cohort = new Set(devices.flatMap((d, i) => (inCohort(rollout.uuid, steps.map((s) => ({ percent: s.percent, deviceUuids: [] })), step, d.uuid) ? [i] : [])));
      expect(new Set(now.flatMap((v, i) => (v !== stable ? [i] : [])))).toEqual(cohort);
      expect(new Set(now.filter((_, i) => cohort.has(i))).size).toBeLessThanOrEqual(1);
      for (const i of members) expect(cohort.has(i)).toBe(true);
      members = cohort;
    }
    expect(members.size).toBe(DEVICES);
    const candidate = (await versions())[0]!;

    // Past the last step: the change is an ordinary habit row, and the stable content is the candidate's.
    const last = await advance(rollout.uuid);
    expect(last).toMatchObject({ state: RolloutState.ROLLOUT_STATE_COMPLETED, currentStep: 2 });
    await replica.synced();
    expect(new Set(await versions())).toEqual(new Set([candidate]));
    const rows = await sys.db.query('select comment from habits where uuid = $1', [habit.uuid]);
    expect(rows.rows).toEqual([{ comment: 'after' }]);
    expect(await api.updateHabit({ uuid: habit.uuid, comment: 'ordinary again' }, ['comment'])).toMatchObject({ comment: 'ordinary again' });
  });

  it('an abort costs a cohort daemon a delta from the candidate it holds, not a full file', async () => {
    const habit = await api.createHabit({ accountLogicalId: logicalId, comment: 'kept', pixels: [uniquePixel()] });
    await replica.synced();
    const daemon = await daemonOf(2);
    try {
      await daemon.sync.syncOnce();
      const stable = (await versions())[2]!;
      const rollout = await create([updateComment(habit.uuid, 'tried')]);
      await start(rollout.uuid, [{ percent: 0, deviceUuids: [devices[2]!.uuid] }, { percent: 100 }]);
      await replica.synced();
      await daemon.sync.syncOnce();
      expect(comments(daemon.dbPath)).toContain('tried');
      // The preview the write service builds is what the replica served: the same files, the same delta.
      const [held, candidate] = daemon.installs.slice(-2) as { sha256: string; bytes: number; deltaBytes: number }[];
      const preview = await call(rollouts, rollouts.previewRollout, { uuid: rollout.uuid, pageSize: 0, pageToken: '' }, key());
      expect(preview.changes).toMatchObject([{ habitUuid: habit.uuid, before: { comment: 'kept' }, after: { comment: 'tried' } }]);
      expect(preview.scopes).toEqual([
        {
          logicalId,
          reportedDevices: expect.any(Number),
          stableBytes: held!.bytes,
          stableSha256: held!.sha256,
          candidateBytes: candidate!.bytes,
          candidateSha256: candidate!.sha256,
          deltaBytes: candidate!.deltaBytes,
        },
      ]);
      expect(preview.nextPageToken).toBe('');

      expect(await abort(rollout.uuid)).toMatchObject({ state: RolloutState.ROLLOUT_STATE_ABORTED });
      await replica.synced();
      expect((await versions())[2]).toBe(stable);
      const installs = daemon.installs.length;
      await daemon.sync.syncOnce();
      expect(comments(daemon.dbPath)).toContain('kept');
      expect(comments(daemon.dbPath)).not.toContain('tried');
      // The delta's base is the candidate file the daemon held, its result the stable file.
      const back = daemon.installs[installs]!;
      expect(back).toMatchObject({ version: stable, deltaBytes: expect.any(Number) });
      expect(back.deltaBytes as number).toBeLessThan((back.bytes as number) / 10);
      expect(await api.updateHabit({ uuid: habit.uuid, comment: 'writable' }, ['comment'])).toMatchObject({ comment: 'writable' });
    } finally {
      daemon.sync.close();
    }
  });

  it('a cohort whose daemons fail to install pauses (or, as its gates say, aborts) the rollout by itself, with the reason and the step\'s figures', async () => {
    const habit = await api.createHabit({ accountLogicalId: logicalId, comment: 'gated', pixels: [uniquePixel()] });
    const rollout = await create([updateComment(habit.uuid, 'breaks installs')]);
    const failing = 3;
    await start(rollout.uuid, [{ percent: 0, deviceUuids: [devices[failing]!.uuid], minDuration: { seconds: 60, nanos: 0 } }, { percent: 100 }], {
      maxInstallFailures: 0,
      minCohortSize: 0,
      onFailure: GateAction.GATE_ACTION_PAUSE,
      autoAdvance: true,
    });
    await replica.synced();
    // A daemon that cannot install: its database's folder is a file (every write is ENOTDIR), reported by ReportStatus.
    const home = path.join(dir, 'not-a-folder');
    await writeFile(home, 'not a folder');
    const tokenFile = path.join(dir, `token-${failing}.txt`);
    await writeFile(tokenFile, `${devices[failing]!.token}\n`, { mode: 0o600 });
    const sync = new DaemonSync({ server: replica.service.address, tokenFile, dbPath: path.join(home, 'titanbotd.sqlite'), logicalId });
    try {
      await expect(sync.syncOnce()).rejects.toThrow(/ENOTDIR/);
    } finally {
      sync.close();
    }
    await vi.waitFor(async () => expect((await get(rollout.uuid)).state).toBe(RolloutState.ROLLOUT_STATE_PAUSED), { timeout: 10_000, interval: 50 });
    const paused = await get(rollout.uuid);
    expect(paused.stateReason).toMatch(/1 install failures in the cohort/);
    expect(paused.stepStatuses[0]!.figures).toMatchObject({ cohortSize: 1, installFailures: 1, holding: 0 });
    // Paused is held: no time passing moves it on; an operator aborts it.
    clock.advance(120_000);
    expect(await abort(rollout.uuid)).toMatchObject({ state: RolloutState.ROLLOUT_STATE_ABORTED, stateReason: '' });

    // The same with gates that abort: another device fails its install, and the rollout ends by itself.
    const second = await create([updateComment(habit.uuid, 'breaks installs again')]);
    const next = 4;
    await start(second.uuid, [{ percent: 0, deviceUuids: [devices[next]!.uuid] }, { percent: 100 }], { maxInstallFailures: 0, minCohortSize: 0, onFailure: GateAction.GATE_ACTION_ABORT, autoAdvance: false });
    await replica.synced();
    const nextToken = path.join(dir, `token-${next}.txt`);
    await writeFile(nextToken, `${devices[next]!.token}\n`, { mode: 0o600 });
    const nextSync = new DaemonSync({ server: replica.service.address, tokenFile: nextToken, dbPath: path.join(home, 'second.sqlite'), logicalId });
    try {
      await expect(nextSync.syncOnce()).rejects.toThrow(/ENOTDIR/);
    } finally {
      nextSync.close();
    }
    await vi.waitFor(async () => expect(await get(second.uuid)).toMatchObject({ state: RolloutState.ROLLOUT_STATE_ABORTED, stateReason: expect.stringMatching(/install failures/) }), {
      timeout: 10_000,
      interval: 50,
    });
    // Every call on a rollout is in the audit trail; the gates' own moves are not calls.
    const audit = sys.write.client(AuditServiceClient);
    const events = await call(audit, audit.listAuditEvents, ListAuditEventsRequest.fromPartial({ resource: second.uuid, pageSize: 100 }), key());
    expect(events.auditEvents.map((e) => e.method)).toEqual(['/titanbot.admin.v1.RolloutService/CreateRollout', '/titanbot.admin.v1.RolloutService/StartRollout']);
  });

  it('a healthy cohort advances on time by itself, and completes', async () => {
    const habit = await api.createHabit({ accountLogicalId: logicalId, comment: 'healthy', pixels: [uniquePixel()] });
    const rollout = await create([updateComment(habit.uuid, 'rolled out')]);
    const steps = [{ percent: 40, minDuration: { seconds: 60, nanos: 0 } }, { percent: 100, minDuration: { seconds: 60, nanos: 0 } }];
    await start(rollout.uuid, steps, { maxInstallFailures: 0, minCohortSize: 1, onFailure: GateAction.GATE_ACTION_ABORT, autoAdvance: true });
    await replica.synced();
    // Every device checks in; the cohort's daemons install the candidate.
    const member = (i: number, step: number) => inCohort(rollout.uuid, steps.map((s) => ({ percent: s.percent, deviceUuids: [] })), step, devices[i]!.uuid);
    const cohort = devices.flatMap((_, i) => (member(i, 0) ? [i] : []));
    expect(cohort.length).toBeGreaterThan(0);
    await versions();
    for (const i of cohort) {
      const d = await daemonOf(i);
      try {
        await d.sync.syncOnce();
        expect(comments(d.dbPath)).toContain('rolled out');
      } finally {
        d.sync.close();
      }
    }
    await vi.waitFor(async () => expect((await get(rollout.uuid)).stepStatuses[0]!.figures).toMatchObject({ cohortSize: cohort.length, holding: cohort.length, installFailures: 0 }), {
      timeout: 10_000,
      interval: 50,
    });
    expect((await get(rollout.uuid))).toMatchObject({ state: RolloutState.ROLLOUT_STATE_RUNNING, currentStep: 0 });
    // The fleet view counts a cohort daemon holding the candidate as current, not as behind its scope's stable version.
    const fleet = sys.write.client(FleetServiceClient);
    const listed = await call(fleet, fleet.listDeviceStatuses, ListDeviceStatusesRequest.fromPartial({ deviceUuid: devices[cohort[0]!]!.uuid }), key());
    expect(listed.deviceStatuses[0]).toMatchObject({ state: DeviceState.DEVICE_STATE_CURRENT });
    clock.advance(61_000);
    await vi.waitFor(async () => expect(await get(rollout.uuid)).toMatchObject({ state: RolloutState.ROLLOUT_STATE_RUNNING, currentStep: 1 }), { timeout: 10_000, interval: 50 });
    // The step left keeps its figures as they stood.
    expect((await get(rollout.uuid)).stepStatuses[0]!.figures).toMatchObject({ cohortSize: cohort.length, holding: cohort.length });
    clock.advance(61_000);
    await vi.waitFor(async () => expect((await get(rollout.uuid)).state).toBe(RolloutState.ROLLOUT_STATE_COMPLETED), { timeout: 10_000, interval: 50 });
    const rows = await sys.db.query('select comment from habits where uuid = $1', [habit.uuid]);
    expect(rows.rows).toEqual([{ comment: 'rolled out' }]);
  });
});
