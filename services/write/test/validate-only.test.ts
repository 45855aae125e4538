import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { AuditServiceClient, ListAuditEventsRequest } from '@titanbot/contracts/titanbot/admin/v1/audit_service';
import { CreateDeviceRequest, DeviceServiceClient, GetDeviceRequest } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { CreateHabitRequest, HabitServiceClient } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { call, failure, startHarness, uniqueInt, type Harness } from './support/harness.js';

let h: Harness;
let db: pg.Client;
beforeAll(async () => {
  h = await startHarness();
  db = new pg.Client({ connectionString: inject('databaseUrl') });
  await db.connect();
});
afterAll(async () => {
  await db?.end();
  await h?.stop();
});

const head = async (): Promise<string> => (await db.query('select head_revision from feed_state')).rows[0].head_revision;

describe('validate_only (AIP-163)', () => {
  it('answers what a create would return and changes nothing: no row, no feed event, no stored request_id, no audit row', async () => {
    const devices = h.client(DeviceServiceClient);
    const deviceId = randomUUID();
    const requestId = randomUUID();
    const request = CreateDeviceRequest.fromPartial({ device: { physicalId: uniqueInt() }, deviceId, requestId });
    const before = await head();
    const started = new Date();

    const previewed = await call(devices, devices.createDevice, { ...request, validateOnly: true }, h.adminToken);
    expect(previewed).toMatchObject({ uuid: deviceId, physicalId: request.device!.physicalId });
    expect(await head()).toBe(before);
    expect((await failure(call(devices, devices.getDevice, GetDeviceRequest.fromPartial({ uuid: deviceId }), h.adminToken))).code).toBe(status.NOT_FOUND);
    const audit = h.client(AuditServiceClient);
    expect((await call(audit, audit.listAuditEvents, ListAuditEventsRequest.fromPartial({ resource: deviceId, startTime: started }), h.adminToken)).auditEvents).toEqual([]);

    // The same request_id then applies for real: the preview stored nothing under it.
    const created = await call(devices, devices.createDevice, request, h.adminToken);
    expect(created.uuid).toBe(deviceId);
    // Now the same preview is refused as the real call would be.
    expect((await failure(call(devices, devices.createDevice, { ...request, requestId: '', validateOnly: true }, h.adminToken))).code).toBe(status.ALREADY_EXISTS);
  });

  it('refuses what the real call would refuse, with the same field violations', async () => {
    const habits = h.client(HabitServiceClient);
    const bad = CreateHabitRequest.fromPartial({ habit: { pixels: [{ x: 0, y: 1, rgbHex: 'FFFFFF' }] } });
    const previewed = await failure(call(habits, habits.createHabit, { ...bad, validateOnly: true }, h.adminToken));
    const real = await failure(call(habits, habits.createHabit, bad, h.adminToken));
    expect([previewed.code, previewed.fields, previewed.details]).toEqual([real.code, real.fields, real.details]);
    expect(previewed.fields).toContain('habit.pixels[0].x');
  });
});
