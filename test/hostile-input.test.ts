/**
 * The hostile inputs of the fault-injection run, one by one: each reached a database, a timer or
 * the decoder and answered INTERNAL; each is now INVALID_ARGUMENT naming its field.
 */
import { randomUUID } from 'node:crypto';
import { Client, credentials, status } from '@grpc/grpc-js';
import { CreateDeviceRequest, DeviceServiceClient } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { CreateLegionRequest, LegionServiceClient } from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import { ClearLogsRequest, ListLogsRequest, LogServiceClient } from '@titanbot/contracts/titanbot/admin/v1/log_service';
import { DaemonTokenServiceClient, IssueDaemonTokenRequest } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { ChangeFeedServiceClient } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { call, failure } from '@titanbot/write/test-support/harness';
import { adminApi, provisionDevice } from '@titanbot/read/test-support/admin';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';
import type protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode, loadProtoServices, rawCall } from './support/raw-grpc.js';

const INT64_MAX = '9223372036854775807';
const YEAR_10000 = new Date('9999-12-31T23:59:59.999Z').getTime() + 1;
const BEFORE_YEAR_1 = new Date('0001-01-01T00:00:00Z').getTime() - 1000;

describe('hostile input', () => {
  let system: System;
  let replica: Replica;
  let fleet: Awaited<ReturnType<typeof provisionDevice>>;
  let root: protobuf.Root;
  const raw: Client[] = [];
  const rawClient = (address: string): Client => {
    const c = new Client(address, credentials.createInsecure());
    raw.push(c);
    return c;
  };

  beforeAll(async () => {
    system = await startSystem();
    replica = await system.startReplica();
    fleet = await provisionDevice(adminApi(system.write));
    root = loadProtoServices().root;
    await replica.synced();
  });
  afterAll(async () => {
    for (const c of raw) c.close();
    await system?.stop();
  });

  it.each([
    ['NUL', 'a\0b'],
    ['control bytes', '\u0001\u001b[2J'],
    ['1 MiB', 'x'.repeat(1024 * 1024)],
    ['not a UUID', 'retry-1'],
  ])('a request_id with %s is INVALID_ARGUMENT request_id', async (_what, requestId) => {
    const devices = system.write.client(DeviceServiceClient);
    const err = await failure(call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: 4242 }, requestId }), system.write.adminToken));
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT', fields: ['request_id'] });
  });

  it('strings over their limit or holding NUL are INVALID_ARGUMENT, every field named', async () => {
    const legions = system.write.client(LegionServiceClient);
    const err = await failure(
      call(legions, legions.createLegion, CreateLegionRequest.fromPartial({ legion: { title: 'x'.repeat(1025), extTitle: 'nul\0' } }), system.write.adminToken),
    );
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT, fields: ['legion.title', 'legion.ext_title'] });
  });

  it.each([
    ['year 10000', YEAR_10000],
    ['before year 1', BEFORE_YEAR_1],
  ])('Timestamps at %s are INVALID_ARGUMENT in ListLogs, ClearLogs and WriteLogs through the replica', async (_what, ms) => {
    const logs = system.write.client(LogServiceClient);
    const key = system.write.adminToken;
    expect(await failure(call(logs, logs.listLogs, ListLogsRequest.fromPartial({ startTime: new Date(ms) }), key))).toMatchObject({
      code: status.INVALID_ARGUMENT,
      fields: ['start_time'],
    });
    expect(await failure(call(logs, logs.clearLogs, ClearLogsRequest.fromPartial({ endTime: new Date(ms) }), key))).toMatchObject({
      code: status.INVALID_ARGUMENT,
      fields: ['end_time'],
    });
    const daemon = replica.daemon();
    const written = call(daemon, daemon.writeLogs, { lines: [{ line: 'ok' }, { line: 'far', logTime: new Date(ms) }], requestId: randomUUID() }, fleet.token);
    expect(await failure(written)).toMatchObject({ code: status.INVALID_ARGUMENT, fields: ['lines[1].log_time'] });
  });

  it('int64 values beyond 2^53 are INVALID_ARGUMENT MALFORMED_MESSAGE naming the field', async () => {
    const issue = await rawCall(
      rawClient(system.write.address),
      '/titanbot.admin.v1.DaemonTokenService/IssueDaemonToken',
      encode(root, 'titanbot.admin.v1.IssueDaemonTokenRequest', { device_uuid: fleet.device.uuid, ttl: { seconds: INT64_MAX } }),
      system.write.adminToken,
    );
    expect(issue).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'MALFORMED_MESSAGE', fields: ['ttl.seconds'] });
    const download = await rawCall(
      rawClient(replica.service.address),
      '/titanbot.daemon.v1.DaemonService/DownloadExport',
      encode(root, 'titanbot.daemon.v1.DownloadExportRequest', { offset: INT64_MAX }),
      fleet.token,
      true,
    );
    expect(download).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'MALFORMED_MESSAGE', fields: ['offset'] });
  });

  it('a ttl beyond google.protobuf.Duration\'s range but within 2^53 is INVALID_ARGUMENT ttl', async () => {
    const tokens = system.write.client(DaemonTokenServiceClient);
    const err = await failure(
      call(tokens, tokens.issueDaemonToken, IssueDaemonTokenRequest.fromPartial({ deviceUuid: fleet.device.uuid, ttl: { seconds: 2 ** 52, nanos: 0 } }), system.write.adminToken),
    );
    expect(err).toMatchObject({ code: status.INVALID_ARGUMENT, fields: ['ttl'] });
  });

  it('an install failure outside the enum is INVALID_ARGUMENT, from a daemon and in a replica\'s batch', async () => {
    const daemon = replica.daemon();
    const report = await failure(call(daemon, daemon.reportStatus, { logicalId: fleet.logicalId, installedVersion: '', installedSha256: '', failure: 99, failureMessage: '' }, fleet.token));
    expect(report).toMatchObject({ code: status.INVALID_ARGUMENT, fields: ['failure'] });
    const feed = system.write.client(ChangeFeedServiceClient);
    const status0 = { deviceUuid: fleet.device.uuid, heldVersion: 'v', heldSha256: '', failure: 40_000, failureMessage: '', lastContactTime: new Date() };
    const batch = await failure(call(feed, feed.reportDeviceStatuses, { replica: 'r', statuses: [status0], scopeVersions: [], rolloutVersions: [] }, system.write.readerToken));
    expect(batch).toMatchObject({ code: status.INVALID_ARGUMENT, fields: ['statuses[0].failure'] });
  });

  it('bytes that are no message are INVALID_ARGUMENT MALFORMED_MESSAGE on both services', async () => {
    const garbage = Buffer.from('ffffffffffffffffff01', 'hex');
    const write = await rawCall(rawClient(system.write.address), '/titanbot.admin.v1.DeviceService/GetDevice', garbage, system.write.adminToken);
    expect(write).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'MALFORMED_MESSAGE' });
    const read = await rawCall(rawClient(replica.service.address), '/titanbot.daemon.v1.DaemonService/CheckVersion', garbage, fleet.token);
    expect(read).toMatchObject({ code: status.INVALID_ARGUMENT, reason: 'MALFORMED_MESSAGE' });
  });
});
