import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { AuditServiceClient, ListAuditEventsRequest, type AuditEvent } from '@titanbot/contracts/titanbot/admin/v1/audit_service';
import { CreateDeviceRequest, DeleteDeviceRequest, DeviceServiceClient, ListDevicesRequest } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { AdminTokenServiceClient } from '@titanbot/contracts/titanbot/admin/v1/admin_token_service';
import { DaemonTokenServiceClient, IssueDaemonTokenRequest } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { call, failure, startHarness, uniqueInt, type Harness } from './support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h?.stop());

/** The audit events of `resource`, or of `method` since `since`, through the admin API. */
async function events(filter: { resource?: string; method?: string; startTime?: Date }): Promise<AuditEvent[]> {
  const audit = h.client(AuditServiceClient);
  return (await call(audit, audit.listAuditEvents, ListAuditEventsRequest.fromPartial({ ...filter, pageSize: 1000 }), h.adminToken)).auditEvents;
}

describe('the audit trail', () => {
  it('records who changed what and how it ended: successes, refusals, bad input; reads are not audited', async () => {
    // Events of earlier test files (same database) are older than this.
    const started = new Date();
    const devices = h.client(DeviceServiceClient);
    const requestId = randomUUID();
    const device = await call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: uniqueInt() }, requestId }), h.adminToken);
    await call(devices, devices.listDevices, ListDevicesRequest.fromPartial({ pageSize: 1 }), h.adminToken);
    await failure(call(devices, devices.deleteDevice, DeleteDeviceRequest.fromPartial({ uuid: device.uuid }), 'not-a-credential-at-all'));
    // An identified caller on the wrong API is named in its refusal: a daemon token, the reader credential.
    const tokens = h.client(DaemonTokenServiceClient);
    const daemonToken = await call(tokens, tokens.issueDaemonToken, IssueDaemonTokenRequest.fromPartial({ deviceUuid: device.uuid }), h.adminToken);
    await failure(call(devices, devices.deleteDevice, DeleteDeviceRequest.fromPartial({ uuid: device.uuid }), daemonToken.token));
    await failure(call(devices, devices.deleteDevice, DeleteDeviceRequest.fromPartial({ uuid: device.uuid }), h.readerToken));
    await failure(call(devices, devices.deleteDevice, DeleteDeviceRequest.fromPartial({ uuid: 'not-a-uuid' }), h.adminToken));
    await call(devices, devices.deleteDevice, DeleteDeviceRequest.fromPartial({ uuid: device.uuid }), h.adminToken);

    const create = DeviceServiceClient.service.createDevice.path;
    const remove = DeviceServiceClient.service.deleteDevice.path;
    expect((await events({ resource: device.uuid })).map((e) => [e.method, e.actorSubject, e.code, e.requestId])).toEqual([
      [create, 'admin-token', status.OK, requestId],
      [remove, '', status.UNAUTHENTICATED, ''],
      [remove, 'daemon-token', status.PERMISSION_DENIED, ''],
      [remove, 'reader-credential', status.PERMISSION_DENIED, ''],
      [remove, 'admin-token', status.OK, ''],
    ]);
    const byDaemon = await call(h.client(AuditServiceClient), h.client(AuditServiceClient).listAuditEvents, ListAuditEventsRequest.fromPartial({ actor: daemonToken.daemonToken!.uuid }), h.adminToken);
    expect(byDaemon.auditEvents).toEqual([expect.objectContaining({ actorSubject: 'daemon-token', method: remove, code: status.PERMISSION_DENIED })]);
    const refusedInput = (await events({ method: remove, startTime: started })).filter((e) => e.code === status.INVALID_ARGUMENT);
    expect(refusedInput).toEqual([expect.objectContaining({ actorSubject: 'admin-token', resource: 'not-a-uuid' })]);
    // A hostile request is audited without its hostile values.
    const before = new Set((await events({ method: create, startTime: started })).map((e) => e.id));
    await failure(call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: 1 }, requestId: 'x'.repeat(1024 * 1024) }), h.adminToken));
    const hostile = (await events({ method: create, startTime: started })).filter((e) => e.code === status.INVALID_ARGUMENT && !before.has(e.id));
    expect(hostile).toEqual([expect.objectContaining({ requestId: '', actorSubject: 'admin-token' })]);
    expect(await events({ method: DeviceServiceClient.service.listDevices.path, startTime: started })).toEqual([]);
  });

  it('records a rotation (outside a write transaction) and keeps audit rows off the change feed', async () => {
    // Events of earlier test files (same database) are older than this.
    const started = new Date();
    const adminTokens = h.client(AdminTokenServiceClient);
    await call(adminTokens, adminTokens.rotateAdminToken, {}, h.adminToken);
    expect(await events({ method: AdminTokenServiceClient.service.rotateAdminToken.path, startTime: started })).toEqual([
      expect.objectContaining({ actorSubject: 'admin-token', code: status.OK }),
    ]);
    const db = new pg.Client({ connectionString: inject('databaseUrl') });
    await db.connect();
    try {
      expect((await db.query("select count(*)::int as n from feed_events where table_name = 'audit_events'")).rows[0].n).toBe(0);
    } finally {
      await db.end();
    }
  });
});
