/**
 * Admission control of DownloadExport: the streams a replica serves hold at most
 * DOWNLOADS_MEMORY_BUDGET (each reserving its payload, at most three chunks, plus 48 KiB); one more
 * whole file is RESOURCE_EXHAUSTED DOWNLOADS_BUSY with a RetryInfo delay spread around
 * DOWNLOADS_RETRY_DELAY, a small delta still fits, and a DaemonSync that meets the refusal retries
 * and completes once the budget frees.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Metadata, status, type ClientReadableStream } from '@grpc/grpc-js';
import { DownloadExportRequest, ExportEncoding, type DownloadExportResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DaemonSync } from '@titanbot/daemon-client';
import { errorDetails, failure } from '@titanbot/write/test-support/harness';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { adminApi, provisionDevice } from './support/admin.js';
import { download } from './support/daemon.js';
import { startSystem, type Replica, type System } from './support/system.js';

/** Pixels in the scope: its file (about half a megabyte) outgrows what HTTP/2 buffers for a stream that is not read. */
const PIXELS = 2_000;

let sys: System;
let replica: Replica;
let dir: string;

beforeAll(async () => {
  sys = await startSystem();
  // A whole file reserves 3 × 16 KiB + 48 KiB = 96 KiB: one fits, two do not; a delta of a few hundred bytes (48.x KiB) fits beside one.
  replica = await sys.startReplica({ DOWNLOADS_MEMORY_BUDGET: '160KiB', DOWNLOADS_RETRY_DELAY: '200ms', EXPORT_CHUNK_BYTES: '16KiB' });
  dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-admission-'));
});
afterAll(async () => {
  await sys?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('refuses a whole file past DOWNLOADS_MEMORY_BUDGET with DOWNLOADS_BUSY and a spread RetryInfo delay while a small delta still fits; a DaemonSync retries and completes once the budget frees', async () => {
  const api = adminApi(sys.write);
  const first = await provisionDevice(api);
  const second = await provisionDevice(api);
  await api.bind(second.device.uuid, first.logicalId);
  for (let h = 0; h < PIXELS / 200; h++) {
    await api.createHabit({ accountLogicalId: first.logicalId, action: `big ${h}`, pixels: Array.from({ length: 200 }, (_, i) => ({ x: h * 1000 + i + 1, y: i + 1, rgbHex: 'A1B2C3', deviation: 1 })) });
  }
  await replica.synced();
  // What a daemon holds before the next change: the delta below starts from it.
  const base = await download(replica.daemon(), first.token, { logicalId: first.logicalId });
  await api.createHabit({ accountLogicalId: first.logicalId, action: 'small change', pixels: [{ x: 1, y: 1, rgbHex: 'A1B2C3', deviation: 1 }] });
  await replica.synced();

  // The first daemon's download is admitted and then not read: it holds most of the budget.
  const daemon = replica.daemon();
  const md = new Metadata();
  md.set('x-api-key', first.token);
  const held: ClientReadableStream<DownloadExportResponse> = daemon.downloadExport(DownloadExportRequest.fromPartial({ logicalId: first.logicalId }), md);
  const header = await new Promise<DownloadExportResponse>((resolve, reject) => {
    held.once('data', (m: DownloadExportResponse) => {
      held.pause();
      resolve(m);
    });
    held.once('error', reject);
  });
  expect(header.kind?.$case).toBe('header');
  const fileBytes = header.kind?.$case === 'header' ? header.kind.value.sizeBytes : 0;
  expect(fileBytes).toBeGreaterThan(256 * 1024);

  const other = new Metadata();
  other.set('x-api-key', second.token);
  const refused = await failure(
    new Promise((resolve, reject) => {
      const call = daemon.downloadExport(DownloadExportRequest.fromPartial({ logicalId: first.logicalId }), other);
      call.on('data', () => undefined);
      call.on('end', resolve);
      call.on('error', reject);
    }),
  );
  expect(refused.code).toBe(status.RESOURCE_EXHAUSTED);
  const details = errorDetails(refused);
  expect(details.reason).toBe('DOWNLOADS_BUSY');
  // DOWNLOADS_RETRY_DELAY (200 ms) spread from half to one and a half times.
  expect(details.retryDelayMs).toBeGreaterThanOrEqual(100);
  expect(details.retryDelayMs).toBeLessThanOrEqual(300);

  // A delta holds next to nothing: admitted beside the whole file, and whole.
  const delta = await download(replica.daemon(), second.token, { logicalId: first.logicalId, heldVersion: base.header.version, heldSha256: base.header.sha256 });
  expect(delta.header.encoding).toBe(ExportEncoding.EXPORT_ENCODING_FOSSIL_DELTA);
  expect(delta.header.payloadSizeBytes).toBeLessThan(2048);
  expect(delta.bytes.length).toBe(delta.header.payloadSizeBytes);

  // A real daemon meets the same refusal, waits as told and tries again until the slot frees.
  const tokenFile = path.join(dir, 'token');
  await writeFile(tokenFile, `${second.token}\n`, { mode: 0o600 });
  const sync = new DaemonSync({ server: replica.service.address, tokenFile, dbPath: path.join(dir, 'titanbotd.sqlite'), logicalId: first.logicalId });
  const busyBefore = replica.service.counters.downloadsBusy;
  const synced = sync.syncOnce();
  await vi.waitFor(() => expect(replica.service.counters.downloadsBusy).toBeGreaterThanOrEqual(busyBefore + 2), { timeout: 10_000, interval: 20 });
  let received = 0;
  held.on('data', (m: DownloadExportResponse) => (received += m.kind?.$case === 'chunk' ? m.kind.value.data.length : 0));
  const ended = new Promise((resolve) => held.on('end', resolve));
  held.resume();
  await ended;
  expect(received).toBe(fileBytes);
  const result = await synced;
  expect([result.changed, result.bytes]).toEqual([true, fileBytes]);
  sync.close();
});
