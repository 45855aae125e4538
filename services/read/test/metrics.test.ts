import { status } from '@grpc/grpc-js';
import { DeviceServiceClient, DeviceServiceService, GetDeviceRequest } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { DaemonServiceService, type DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { ChangeFeedServiceService } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { call, failure } from '@titanbot/write/test-support/harness';
import { adminApi, provisionDevice, uniquePixel } from './support/admin.js';
import { checkVersion, download } from './support/daemon.js';
import { watch } from './support/more.js';
import { startSystem, type Replica, type System } from './support/system.js';

const METRICS = { METRICS_ADDR: '127.0.0.1:0' };
const CHECKS = 5;

let sys: System;
let replica: Replica;
let daemon: DaemonServiceClient;
let fleet: Awaited<ReturnType<typeof provisionDevice>>;

beforeAll(async () => {
  sys = await startSystem(METRICS);
  const api = adminApi(sys.write);
  fleet = await provisionDevice(api);
  replica = await sys.startReplica(METRICS);
  await replica.service.consumer.caughtUp;
  // Changes after the replica's snapshot: applied as feed events.
  await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'metrics', pixels: [uniquePixel()] });
  await api.createHabit({ action: 'metrics-global', pixels: [uniquePixel()] });
  await replica.synced();
  daemon = replica.daemon();
});
afterAll(async () => {
  await sys?.stop();
});

/** One sample of the Prometheus text format. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

async function scrape(address: string | undefined): Promise<Sample[]> {
  expect(address).toBeDefined();
  const res = await fetch(`http://${address}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples: Sample[] = [];
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of the one sample named `name` whose labels include `labels`; throws when absent. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}`);
  return found[0]!.value;
}

const rpc = (path: string, code: status): Record<string, string> => ({ method: path, code: status[code] });

describe('metrics', () => {
  it('read service: RPCs, feed progress, exports, streams and refusals', async () => {
    for (let i = 0; i < CHECKS; i++) await checkVersion(daemon, fleet.token, fleet.logicalId);
    expect((await failure(checkVersion(daemon, '', fleet.logicalId))).code).toBe(status.UNAUTHENTICATED);
    const first = await download(daemon, fleet.token, { logicalId: fleet.logicalId });
    await download(daemon, fleet.token, { logicalId: fleet.logicalId });

    const w = watch(daemon, fleet.token, fleet.logicalId, '');
    await w.next(1);
    const open = await scrape(replica.service.metricsAddress);
    expect(value(open, 'titanbot_watch_streams_active')).toBe(1);
    w.cancel();
    await vi.waitFor(async () => expect(value(await scrape(replica.service.metricsAddress), 'titanbot_watch_streams_active')).toBe(0));

    const m = await scrape(replica.service.metricsAddress);
    const check = DaemonServiceService.checkVersion.path;
    expect(value(m, 'titanbot_rpc_requests_total', rpc(check, status.OK))).toBeGreaterThanOrEqual(CHECKS);
    expect(value(m, 'titanbot_rpc_requests_total', rpc(check, status.UNAUTHENTICATED))).toBeGreaterThanOrEqual(1);
    expect(value(m, 'titanbot_rpc_duration_seconds_count', rpc(check, status.OK))).toBeGreaterThanOrEqual(CHECKS);
    expect(value(m, 'titanbot_rpc_duration_seconds_bucket', { ...rpc(check, status.OK), le: '+Inf' })).toBeGreaterThanOrEqual(CHECKS);
    expect(value(m, 'titanbot_rpc_requests_total', rpc(DaemonServiceService.downloadExport.path, status.OK))).toBe(2);
    expect(value(m, 'titanbot_rpc_requests_total', rpc(DaemonServiceService.watchVersion.path, status.CANCELLED))).toBe(1);

    const applied = replica.service.model.checkpoint!.revision;
    expect(value(m, 'titanbot_feed_applied_revision')).toBe(applied);
    expect(value(m, 'titanbot_feed_head_revision')).toBe(applied);
    expect(value(m, 'titanbot_feed_lag_revisions')).toBe(0);
    expect(value(m, 'titanbot_feed_events_applied_total')).toBeGreaterThanOrEqual(2);

    expect(value(m, 'titanbot_export_builds_total')).toBeGreaterThanOrEqual(1);
    expect(value(m, 'titanbot_export_cache_hits_total')).toBeGreaterThanOrEqual(1);
    expect(value(m, 'titanbot_export_cache_evictions_total')).toBe(0);
    expect(value(m, 'titanbot_export_cache_bytes')).toBeGreaterThanOrEqual(first.header.sizeBytes);
    expect(value(m, 'titanbot_export_cache_entries')).toBeGreaterThanOrEqual(1);
    expect(value(m, 'titanbot_downloads_active')).toBe(0);
    expect(value(m, 'titanbot_watch_streams_active')).toBe(0);

    expect(value(m, 'titanbot_auth_failures_total', { reason: 'missing' })).toBeGreaterThanOrEqual(1);
    expect(value(m, 'titanbot_auth_failures_total', { reason: 'revoked' })).toBe(0);
    expect(value(m, 'titanbot_rate_limited_total')).toBe(0);
    // Default process metrics, under their standard names.
    expect(value(m, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(m.some((s) => s.name === 'nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it('write service: RPCs by code (auth failures included) and the feed head revision', async () => {
    const devices = sys.write.client(DeviceServiceClient);
    const refused = await failure(call(devices, devices.getDevice, GetDeviceRequest.fromPartial({ uuid: fleet.device.uuid }), 'not-the-admin-token'));
    expect(refused.code).toBe(status.UNAUTHENTICATED);

    const statuses = async (): Promise<number> => (await sys.db.query('select count(*)::int as n from device_statuses')).rows[0].n;
    const statusesBefore = await statuses();
    const m = await scrape(sys.write.service.metricsAddress);
    const statusesAfter = await statuses();
    expect(value(m, 'titanbot_rpc_requests_total', rpc(DeviceServiceService.createDevice.path, status.OK))).toBeGreaterThanOrEqual(1);
    expect(value(m, 'titanbot_rpc_requests_total', rpc(DeviceServiceService.getDevice.path, status.UNAUTHENTICATED))).toBe(1);
    expect(value(m, 'titanbot_rpc_duration_seconds_count', rpc(DeviceServiceService.createDevice.path, status.OK))).toBeGreaterThanOrEqual(1);
    // The replica's initial Snapshot stream has ended.
    expect(value(m, 'titanbot_rpc_requests_total', rpc(ChangeFeedServiceService.snapshot.path, status.OK))).toBeGreaterThanOrEqual(1);
    const head = Number((await sys.db.query('select head_revision from feed_state')).rows[0].head_revision);
    expect(value(m, 'titanbot_feed_head_revision')).toBe(head);
    // The fleet view: every state exported, counting every reported device (the replica may report more meanwhile).
    const states = ['current', 'behind', 'failing', 'offline'].map((state) => value(m, 'titanbot_fleet_devices', { state }));
    const reported = states.reduce((a, b) => a + b, 0);
    expect(reported).toBeGreaterThanOrEqual(statusesBefore);
    expect(reported).toBeLessThanOrEqual(statusesAfter);
    expect(value(m, 'titanbot_fleet_oldest_behind_seconds')).toBeGreaterThanOrEqual(0);
  });

  it('answers 404 off /metrics and runs no server without METRICS_ADDR', async () => {
    const res = await fetch(`http://${replica.service.metricsAddress}/other`);
    expect(res.status).toBe(404);
    const quiet = await sys.startReplica();
    try {
      expect(quiet.service.metricsAddress).toBeUndefined();
    } finally {
      await quiet.stop();
    }
  });
});
