import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChangeFeedServiceClient, IngestLogsRequest } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { call, startHarness, uniqueInt, type Harness } from '@titanbot/write/test-support/harness';
import { runCaptured } from './run-captured.test-support.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

/** Runs titanctl in-process and captures what it prints. */
const run = (...argv: string[]) => runCaptured(argv);

/** titanctl against the harness with its admin token. */
const ctl = (...argv: string[]) => run(...argv, '--server', h.address, '--token', h.adminToken);

/** Runs a command expected to succeed and parses its JSON output. */
async function json(...argv: string[]): Promise<Record<string, any>> {
  const r = await ctl(...argv);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as Record<string, any>;
}

async function newDevice(): Promise<Record<string, any>> {
  return json('devices', 'create', '--physical-id', String(uniqueInt()));
}

async function newAccount(logicalId = uniqueInt()): Promise<Record<string, any>> {
  return json(
    'accounts', 'create', '--logical-id', String(logicalId), '--first-name', 'Ann', '--last-name', 'Lee',
    '--birth-date', '1990-05-17', '--gender', 'female', '--google-login', `ann${logicalId}@example.com`, '--google-password', 'pw',
  );
}

describe('titanctl against a real write service', () => {
  it('creates a device and prints it as proto JSON with exit 0', async () => {
    const physicalId = uniqueInt();
    const device = await json('devices', 'create', '--physical-id', String(physicalId), '--activity-type', 'ajagplay', '--is-active', 'true');
    expect(device).toMatchObject({ physicalId, isActive: true, activityType: 'ACTIVITY_TYPE_AJAGPLAY', goTimeLimitSeconds: 100 });
    expect(device.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(await json('devices', 'get', device.uuid)).toEqual(device);
  });

  it('creates an account and binds it to a device', async () => {
    const device = await newDevice();
    const logicalId = uniqueInt();
    const account = await newAccount(logicalId);
    expect(account).toMatchObject({ logicalId, firstName: 'Ann', birthDate: '1990-05-17T00:00:00.000Z', gender: 'GENDER_FEMALE' });
    const bound = await json('devices', 'bind', '--device', device.uuid, '--logical-id', String(logicalId));
    expect(bound).toMatchObject({ uuid: device.uuid, currentAccountLogicalId: logicalId, accountLogicalIds: [logicalId] });
  });

  it('creates a habit with pixels and a shape, then updates only the fields given', async () => {
    const logicalId = uniqueInt();
    const habit = await json(
      'habits', 'create', '--account', String(logicalId), '--pixel', '8,8,FFFFFF', '--pixel', '9,9,00aa00,3',
      '--shape', 'circle,1,2,3,4,5,ABCDEF', '--action', 'tap', '--priority', '5',
    );
    expect(habit).toMatchObject({
      accountLogicalId: logicalId,
      action: 'tap',
      priority: 5,
      pixels: [{ x: 8, y: 8, rgbHex: 'FFFFFF' }, { x: 9, y: 9, rgbHex: '00AA00', deviation: 3 }],
      shapes: [{ type: 'SHAPE_TYPE_CIRCLE', x: 1, y: 2, width: 3, height: 4, size: 5, rgbHex: 'ABCDEF' }],
    });

    const updated = await json('habits', 'update', habit.uuid, '--comment', 'hello', '--clear', 'priority', '--etag', habit.etag);
    expect(updated).toMatchObject({ comment: 'hello', action: 'tap', accountLogicalId: logicalId, pixels: habit.pixels });
    expect(updated.priority).toBeUndefined();

    const replaced = await json('habits', 'update', habit.uuid, '--pixel', '2,3,000000');
    expect(replaced.pixels).toEqual([{ x: 2, y: 3, rgbHex: '000000' }]);
    expect(replaced.comment).toBe('hello');
  });

  it('updates a device with an update_mask of exactly the flags given, and --clear resets to the default', async () => {
    const device = await json('devices', 'create', '--physical-id', String(uniqueInt()), '--go-time-limit-seconds', '7', '--is-ssh', 'true');
    const updated = await json('devices', 'update', '--uuid', device.uuid, '--is-active', 'true');
    expect(updated).toMatchObject({ isActive: true, isSsh: true, goTimeLimitSeconds: 7 });
    const cleared = await json('devices', 'update', device.uuid, '--clear', 'go-time-limit-seconds');
    expect(cleared).toMatchObject({ isActive: true, isSsh: true, goTimeLimitSeconds: 100 });
  });

  it('fails a stale --etag with ABORTED and exit 1', async () => {
    const legion = await json('legions', 'create', '--title', 'Red', '--pay-day', '15');
    await json('legions', 'update', legion.uuid, '--ext-title', 'Crimson');
    const r = await ctl('legions', 'update', legion.uuid, '--title', 'Blue', '--etag', legion.etag);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^titanctl: ABORTED: /);
  });

  it('prints a list as a table with one row per item', async () => {
    const physicalId = uniqueInt();
    const device = await json('devices', 'create', '--physical-id', String(physicalId));
    const r = await ctl('devices', 'list', '--physical-id', String(physicalId), '--table');
    expect(r.code).toBe(0);
    const [header, row, ...more] = r.out.trimEnd().split('\n');
    expect(more).toEqual([]);
    expect(header?.split(/\s+/)).toEqual([
      'uuid', 'physicalId', 'isActive', 'isSsh', 'isNeedToUpdate', 'activityType', 'isFullServerDetection',
      'isAbleToClearCache', 'goTimeLimitSeconds', 'currentAccountLogicalId', 'etag',
    ]);
    expect(row?.split(/\s+/).slice(0, 4)).toEqual([device.uuid, String(physicalId), 'false', 'false']);
  });

  it('shows the fleet: counts per state and the worst devices, as JSON and as a table', async () => {
    const device = await newDevice();
    const logicalId = uniqueInt();
    const feed = h.client(ChangeFeedServiceClient);
    const reported = { deviceUuid: device.uuid as string, logicalId, heldVersion: 'old', heldSha256: '', failure: 0, failureMessage: '', lastContactTime: new Date() };
    await call(feed, feed.reportDeviceStatuses, { replica: 'replica-a', statuses: [reported], scopeVersions: [{ logicalId, version: 'new', since: new Date() }], rolloutVersions: [] }, h.readerToken);
    const status = await json('fleet', 'status', '--logical-id', String(logicalId));
    // Zero counts are written out; the oldest wait reads as a duration.
    expect(status.summary).toMatchObject({ devices: 1, behind: 1, current: 0, failing: 0, offline: 0, oldestBehind: expect.stringMatching(/^\d+s$/) });
    expect(status.worst).toEqual([expect.objectContaining({ deviceUuid: device.uuid, state: 'DEVICE_STATE_BEHIND', heldVersion: 'old', currentVersion: 'new', replica: 'replica-a' })]);
    expect(status.worst[0]).not.toHaveProperty('failure');
    const table = await ctl('fleet', 'status', '--logical-id', String(logicalId), '--table');
    expect(table.code).toBe(0);
    expect(table.out).toContain(device.uuid as string);
    // No install failure reads as an empty cell, not `0`.
    const lines = table.out.split('\n');
    const header = lines.find((l) => l.startsWith('deviceUuid'))!;
    const row = lines.find((l) => l.startsWith(device.uuid as string))!;
    const at = header.indexOf(' failure ') + 1;
    expect(at).toBeGreaterThan(0);
    expect(row.slice(at, at + 'failure'.length).trim()).toBe('');

    // The device's history: its first report, then a failed install of the new version.
    await call(feed, feed.reportDeviceStatuses, { replica: 'replica-b', statuses: [{ ...reported, failure: 3, failureMessage: 'EACCES', lastContactTime: new Date() }], scopeVersions: [], rolloutVersions: [] }, h.readerToken);
    const history = await json('fleet', 'history', '--device', device.uuid as string);
    expect(history.map((c: { heldVersion: string; failure?: string; replica: string }) => [c.heldVersion, c.failure, c.replica])).toEqual([
      ['old', 'INSTALL_FAILURE_PERMISSION', 'replica-b'],
      ['old', undefined, 'replica-a'],
    ]);
  });

  it('lists the audit trail of a resource', async () => {
    const device = await newDevice();
    const trail = await json('audit', 'list', '--resource', device.uuid as string);
    expect(trail.auditEvents).toEqual([expect.objectContaining({ method: '/titanbot.admin.v1.DeviceService/CreateDevice', actorSubject: 'admin-token', resource: device.uuid })]);
  });

  it('follows every page with --all', async () => {
    // Far-future years of their own keep these clear of dates other suites create.
    for (let i = 0; i < 3; i++) await json('empire-dates', 'create', '--date', `${2200 + (uniqueInt() % 700)}-0${1 + i}-15`);
    const page = await json('empire-dates', 'list', '--page-size', '1');
    expect(page.empireDates).toHaveLength(1);
    expect(page.nextPageToken).toBeTruthy();
    const all = await json('empire-dates', 'list', '--page-size', '1', '--all');
    expect(all.empireDates.length).toBeGreaterThanOrEqual(3);
    expect(all.nextPageToken).toBe('');
  });

  it('issues a daemon token with a TTL and revokes it', async () => {
    const device = await newDevice();
    const issued = await json('tokens', 'issue', '--device', device.uuid, '--ttl', '30m');
    expect(issued.token).toMatch(/^tbd_/);
    const t = issued.daemonToken;
    expect(Date.parse(t.expireTime) - Date.parse(t.createTime)).toBe(30 * 60 * 1000);
    const revoked = await json('tokens', 'revoke', t.uuid);
    expect(revoked).toMatchObject({ uuid: t.uuid, deviceUuid: device.uuid });
    expect(revoked.revokeTime).toBeTruthy();
    const listed = await json('tokens', 'list', '--device', device.uuid);
    expect(listed.daemonTokens.map((x: { uuid: string }) => x.uuid)).toEqual([t.uuid]);
  });

  it("imports a legacy token for a device, lists it without its secret, refuses it twice, and revokes it", async () => {
    const device = await newDevice();
    const secret = `original-${uniqueInt()}`;
    const imported = await json('legacy-tokens', 'import', '--device', device.uuid, '--legacy-token', secret, '--expires', '90d');
    expect(imported).toMatchObject({ deviceUuid: device.uuid, prefix: 'legacy', legacy: true });
    expect(Date.parse(imported.expireTime)).toBeGreaterThan(Date.now() + 89 * 86_400_000);
    expect(JSON.stringify(imported)).not.toContain(secret);
    const again = await ctl('legacy-tokens', 'import', '--device', device.uuid, '--legacy-token', secret);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/^titanctl: ALREADY_EXISTS: /);
    expect((await json('legacy-tokens', 'list', '--device', device.uuid)).daemonTokens.map((t: { uuid: string }) => t.uuid)).toEqual([imported.uuid]);
    expect(await json('legacy-tokens', 'revoke', imported.uuid)).toMatchObject({ uuid: imported.uuid, revokeTime: expect.any(String) });
  });

  it('lists log lines matching --grep and clears them', async () => {
    const device = await newDevice();
    const feed = h.client(ChangeFeedServiceClient);
    const marker = randomUUID();
    const lines = [`boot ${marker}`, 'unrelated', `ready ${marker}`];
    await call(feed, feed.ingestLogs, IngestLogsRequest.fromPartial({ deviceUuid: device.uuid, lines: lines.map((line) => ({ line })), requestId: randomUUID() }), h.readerToken);

    const listed = await json('logs', 'list', '--grep', marker, '--since', '1h');
    expect(listed.logEntries.map((e: { line: string }) => e.line)).toEqual([`boot ${marker}`, `ready ${marker}`]);
    expect(await json('logs', 'clear', '--device', device.uuid)).toEqual({ deletedCount: 3 });
    // An empty list reads as one, not as `{}`.
    expect(await json('logs', 'list', '--device', device.uuid)).toEqual({ logEntries: [], nextPageToken: '' });
  });
});

describe('titanctl errors', () => {
  it('reports an unknown id as NOT_FOUND with exit 1 and no stack trace', async () => {
    const r = await ctl('devices', 'get', randomUUID());
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^titanctl: NOT_FOUND: .+\n {2}reason: \S+\n$/);
    expect(r.err).not.toMatch(/\bat /);
  });

  it('reports an invalid field as INVALID_ARGUMENT with one line per field violation', async () => {
    const r = await ctl('legions', 'create', '--title', 'Gold', '--pay-day', '40');
    expect(r.code).toBe(1);
    const lines = r.err.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^titanctl: INVALID_ARGUMENT: /);
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}legion\.pay_day_of_month: /));
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}reason: /));
  });

  it('rejects an unknown flag with exit 2 and the resource usage, without calling the server', async () => {
    const r = await run('devices', 'create', '--physical-id', '1', '--colour', 'red', '--server', '127.0.0.1:1', '--token', 'x');
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^titanctl: unknown flag --colour\n/);
    expect(r.err).toContain('Usage: titanctl devices <verb> [flags]');
  });

  it('rejects bad values and missing required flags with exit 2', async () => {
    expect((await ctl('devices', 'create')).err).toMatch(/^titanctl: --physical-id is required\n/);
    expect((await ctl('devices', 'create', '--physical-id', 'seven')).err).toMatch(/^titanctl: --physical-id: expected an integer/);
    expect((await ctl('habits', 'create', '--pixel', '1,2')).code).toBe(2);
    expect((await ctl('tokens', 'issue', '--device', randomUUID(), '--ttl', 'soon')).code).toBe(2);
    expect((await ctl('devices', 'update', randomUUID())).err).toMatch(/^titanctl: nothing to update/);
    expect((await ctl('devices', 'update', randomUUID(), '--clear', 'is-ssh')).err).toMatch(/^titanctl: --clear is-ssh: clearable here: go-time-limit-seconds\n/);
    expect((await run('gadgets', 'list')).code).toBe(2);
    expect((await run('devices', 'explode')).err).toMatch(/^titanctl: unknown verb: devices explode\n/);
  });

  it('explains UNAVAILABLE with a hint about --server, and about TLS for a plaintext call', async () => {
    const r = await run('legions', 'list', '--server', '127.0.0.1:1', '--token', 'x');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^titanctl: UNAVAILABLE: /);
    expect(r.err).toContain('127.0.0.1:1');
    expect(r.err).toContain('if it serves TLS (TLS_CERT_FILE), connect with --ca-file PATH');
    expect(r.err).not.toContain('Resolution note');
    const tls = await run('legions', 'list', '--server', '127.0.0.1:1', '--token', 'x', '--tls');
    expect(tls.err).not.toContain('if it serves TLS');
  });

  it('prints help on stdout with exit 0', async () => {
    const top = await run('--help');
    expect(top.code).toBe(0);
    expect(top.out).toContain('empire-dates   create get list update delete next');
    expect(top.out).toContain('legacy-tokens  import list revoke');
    const res = await run('habits', '--help');
    expect(res.code).toBe(0);
    expect(res.out).toContain('--pixel x,y,RRGGBB[,dev]');
    const create = await run('habits', 'create', '--help');
    expect(create.out).toContain('type is rectangle, circle, triangle or irregular');
  });
});

describe('titanctl admin token lookup', () => {
  it('takes the token from TITANBOT_ADMIN_TOKEN', async () => {
    vi.stubEnv('TITANBOT_ADMIN_TOKEN', h.adminToken);
    vi.stubEnv('TITANBOT_SERVER', h.address);
    const r = await run('legions', 'list', '--page-size', '1');
    expect(r.code).toBe(0);
  });

  it('runs a rollout from a change file: create, start with a canary and gates, advance to completion, list by state', async () => {
    const logicalId = uniqueInt();
    const habit = await json('habits', 'create', '--account', String(logicalId), '--comment', 'before');
    const device = await newDevice();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'titanctl-rollout-'));
    try {
      const file = path.join(dir, 'changes.json');
      await writeFile(file, JSON.stringify([{ update: { habit: { uuid: habit.uuid, comment: 'after' }, updateMask: 'comment' } }]));
      const created = await json('rollouts', 'create', '--changes', file, '--description', 'comment change');
      expect(created).toMatchObject({ state: 'ROLLOUT_STATE_CREATED', accountLogicalId: logicalId, habitUuids: [habit.uuid], description: 'comment change' });
      expect(created.changes).toEqual([{ update: { habit: expect.objectContaining({ uuid: habit.uuid, comment: 'after' }), updateMask: 'comment' } }]);
      // The habit is held: an ordinary update is refused, naming the rollout.
      const refused = await ctl('habits', 'update', habit.uuid, '--comment', 'ordinary');
      expect(refused.code).not.toBe(0);
      expect(refused.err).toContain('ROLLOUT_IN_PROGRESS');
      expect(refused.err).toContain(created.uuid);

      const preview = await ctl('rollouts', 'preview', created.uuid, '--table');
      expect(preview.out).toContain(`${habit.uuid}: updated`);
      // logicalId, reportedDevices, stableBytes, stableSha256 (cut), candidateBytes, candidateSha256 (cut), deltaBytes.
      expect(preview.out).toMatch(new RegExp(`^${logicalId}\\s+0\\s+\\d+\\s+[0-9a-f]{40}\\S*\\s+\\d+\\s+[0-9a-f]{40}\\S*\\s+\\d+$`, 'm'));
      const started = await json('rollouts', 'start', created.uuid, '--step', '0', '--canary', device.uuid, '--step', '100', '--max-install-failures', '2', '--on-failure', 'abort');
      expect(started).toMatchObject({ state: 'ROLLOUT_STATE_RUNNING', steps: [{ deviceUuids: [device.uuid] }, { percent: 100 }], gates: { maxInstallFailures: 2, onFailure: 'GATE_ACTION_ABORT' } });
      const table = await ctl('rollouts', 'get', created.uuid, '--table');
      expect(table.out).toMatch(/^step\s+percent\s+canaries\s+at\s+cohort/m);
      expect(table.out).toMatch(/^0\s+0\s+1\s+here/m);
      expect(await json('rollouts', 'advance', created.uuid)).toMatchObject({ state: 'ROLLOUT_STATE_RUNNING', currentStep: 1 });
      expect(await json('rollouts', 'advance', created.uuid)).toMatchObject({ state: 'ROLLOUT_STATE_COMPLETED' });
      expect(await json('habits', 'get', habit.uuid)).toMatchObject({ comment: 'after' });
      const completed = await json('rollouts', 'list', '--state', 'completed');
      expect(completed.rollouts.map((r: { uuid: string }) => r.uuid)).toContain(created.uuid);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('takes the token from the file secret store under DATA_DIR', async () => {
    vi.stubEnv('TITANBOT_ADMIN_TOKEN', '');
    vi.stubEnv('DATA_DIR', h.dataDir);
    const r = await run('legions', 'list', '--page-size', '1', '--server', h.address);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  it('rejects a wrong token with UNAUTHENTICATED', async () => {
    const r = await run('legions', 'list', '--server', h.address, '--token', 'wrong');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^titanctl: UNAUTHENTICATED: /);
  });

  it('says where it looked when there is no credential at all', async () => {
    vi.stubEnv('TITANBOT_ADMIN_TOKEN', '');
    vi.stubEnv('TITANBOT_CONFIG_DIR', '/nonexistent-titanctl-test');
    vi.stubEnv('DATA_DIR', '/nonexistent-titanctl-test');
    const r = await run('legions', 'list', '--server', h.address);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^titanctl: not logged in: run titanctl login, or no admin token: .*\/nonexistent-titanctl-test\/secrets\/admin-token\.json/);
  });
});
