/**
 * Delta downloads end to end: a real write service, a real replica and DaemonSync. Every kind of
 * change reaches the daemon as a Fossil delta whose result is byte for byte the full download; a
 * replica keeps what daemons hold across a restart and a change of file format; truncated and
 * corrupt deltas, and a held file changed on disk, end in the right file; old clients get files.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status } from '@grpc/grpc-js';
import { ExportEncoding } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DaemonSync } from '@titanbot/daemon-client';
import Database from 'better-sqlite3';
import { applyDelta } from 'fossil-delta';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, provisionDevice, uniquePixel, uniqueShape } from '@titanbot/read/test-support/admin';
import { download } from '@titanbot/read/test-support/daemon';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';

let sys: System;
let api: ReturnType<typeof adminApi>;
let fleet: Awaited<ReturnType<typeof provisionDevice>>;
let dir: string;
let tokenFile: string;

beforeAll(async () => {
  sys = await startSystem();
  api = adminApi(sys.write);
  fleet = await provisionDevice(api);
  dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-delta-'));
  tokenFile = path.join(dir, 'token.txt');
  await writeFile(tokenFile, `${fleet.token}\n`, { mode: 0o600 });
  // Something in the scope and in the global scope, so every file has a few pages.
  for (let i = 0; i < 20; i++) await api.createHabit({ accountLogicalId: i % 2 ? fleet.logicalId : undefined, comment: `seed ${i}`, pixels: [uniquePixel(), uniquePixel()], shapes: [uniqueShape()] });
});
afterAll(async () => {
  await sys?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** A daemon on `replica` keeping `dbPath`, with the events it logs. */
function daemon(replica: Replica, dbPath: string) {
  const events: { event: string; fields: Record<string, unknown> }[] = [];
  const sync = new DaemonSync({ server: replica.service.address, tokenFile, dbPath, logicalId: fleet.logicalId, logger: (event, fields) => events.push({ event, fields }) });
  return { sync, events, last: (event: string) => events.filter((e) => e.event === event).at(-1)?.fields };
}

/** What an old client (no held file) downloads for the scope now: the whole file. */
async function fullFile(replica: Replica): Promise<Buffer> {
  const full = await download(replica.daemon(), fleet.token, { logicalId: fleet.logicalId });
  expect(full.header).toMatchObject({ encoding: ExportEncoding.EXPORT_ENCODING_UNSPECIFIED, payloadSizeBytes: full.header.sizeBytes, baseSha256: '' });
  expect(sha256(full.bytes)).toBe(full.header.sha256);
  return full.bytes;
}

describe('delta downloads', () => {
  it('brings every kind of change as a delta whose result is exactly the full download', async () => {
    const replica = await sys.startReplica();
    const d = daemon(replica, path.join(dir, 'kinds.sqlite'));
    const other = await api.createAccount();
    try {
      await replica.synced();
      expect(await d.sync.syncOnce()).toMatchObject({ changed: true });
      const mine = await api.createHabit({ accountLogicalId: fleet.logicalId, priority: 5, comment: 'mine', pixels: [uniquePixel()], shapes: [uniqueShape()] });
      const global = await api.createHabit({ comment: 'global', pixels: [uniquePixel()] });
      const changes: [string, () => Promise<unknown>][] = [
        ['insert', () => api.createHabit({ accountLogicalId: fleet.logicalId, priority: 2, comment: 'inserted', pixels: [uniquePixel()] })],
        ['update', () => api.updateHabit({ uuid: mine.uuid, comment: 'updated, and longer than before' }, ['comment'])],
        ['priority (the row moves)', () => api.updateHabit({ uuid: mine.uuid, priority: 9 }, ['priority'])],
        ['pixel list', () => api.updateHabit({ uuid: mine.uuid, pixels: [uniquePixel(), uniquePixel(), uniquePixel()] }, ['pixels'])],
        ['shape list', () => api.updateHabit({ uuid: mine.uuid, shapes: [uniqueShape(), uniqueShape()] }, ['shapes'])],
        ['global habit changed', () => api.updateHabit({ uuid: global.uuid, comment: 'global, changed' }, ['comment'])],
        ['moved to another scope', () => api.updateHabit({ uuid: mine.uuid, accountLogicalId: other.logicalId }, ['account_logical_id'])],
        ['moved back', () => api.updateHabit({ uuid: mine.uuid, accountLogicalId: fleet.logicalId }, ['account_logical_id'])],
        ['deactivated', () => api.updateHabit({ uuid: mine.uuid, isActive: false }, ['is_active'])],
        ['delete', () => api.deleteHabit(global.uuid)],
      ];
      await replica.synced();
      await d.sync.syncOnce();
      for (const [kind, change] of changes) {
        await change();
        await replica.synced();
        const result = await d.sync.syncOnce();
        expect(result.changed, kind).toBe(true);
        const installed = d.last('installed')!;
        expect(installed.deltaBytes, kind).toBe(result.bytes);
        const file = await readFile(path.join(dir, 'kinds.sqlite'));
        expect(result.bytes, kind).toBeLessThan(file.length / 2);
        expect(file.equals(await fullFile(replica)), kind).toBe(true);
      }
      expect(d.events.some((e) => e.event === 'delta-failed')).toBe(false);
    } finally {
      d.sync.close();
      await replica.stop();
    }
  });

  it('still has what a daemon holds after a restart, and serves a delta across a change of file format', async () => {
    let replica = await sys.startReplica();
    const dbPath = path.join(dir, 'restart.sqlite');
    let d = daemon(replica, dbPath);
    await replica.synced();
    await d.sync.syncOnce();
    d.sync.close();
    await replica.stop({ keepData: true });

    await api.createHabit({ accountLogicalId: fleet.logicalId, comment: 'while the replica was down', pixels: [uniquePixel()] });
    replica = await sys.startReplica({}, replica.dataDir);
    try {
      await replica.synced();
      d = daemon(replica, dbPath);
      expect((await d.sync.syncOnce()).changed).toBe(true);
      expect(d.last('installed')!.deltaBytes).toBeGreaterThan(0);
      expect((await readFile(dbPath)).equals(await fullFile(replica))).toBe(true);
      d.sync.close();

      // A daemon holding the file as an earlier release wrote it (same rows, another page size),
      // which a replica kept from before its upgrade: the delta crosses the format change.
      const oldFormat = path.join(dir, 'old-format.sqlite');
      const db = new Database(dbPath, { readonly: true });
      db.exec(`vacuum into '${oldFormat}'`);
      db.close();
      const upgraded = new Database(oldFormat);
      upgraded.exec('pragma page_size = 1024; vacuum');
      upgraded.close();
      const oldBytes = await readFile(oldFormat);
      const oldVersion = randomBytes(16).toString('hex');
      await copyFile(oldFormat, path.join(replica.dataDir, 'read', 'exports', `${fleet.logicalId}-${oldVersion}-${sha256(oldBytes)}.sqlite`));
      await replica.stop({ keepData: true });
      replica = await sys.startReplica({ DELTA_MAX_RATIO: '1' }, replica.dataDir);
      await replica.synced();
      await writeFile(dbPath, oldBytes);
      await writeFile(`${dbPath}.version`, JSON.stringify({ version: oldVersion, sha256: sha256(oldBytes), logicalId: fleet.logicalId }));
      d = daemon(replica, dbPath);
      expect((await d.sync.syncOnce()).changed).toBe(true);
      expect(d.last('installed')!.deltaBytes).toBeGreaterThan(0);
      expect((await readFile(dbPath)).equals(await fullFile(replica))).toBe(true);
    } finally {
      d.sync.close();
      await replica.stop();
    }
  });

  it('resumes a truncated delta, and recovers from a corrupt one or a held file changed on disk with the full file', async () => {
    const replica = await sys.startReplica();
    const dbPath = path.join(dir, 'broken.sqlite');
    let d = daemon(replica, dbPath);
    try {
      await replica.synced();
      await d.sync.syncOnce();
      const held = await readFile(dbPath);
      const heldVersion = JSON.parse(await readFile(`${dbPath}.version`, 'utf8')).version as string;
      const change = async (comment: string): Promise<{ header: Awaited<ReturnType<typeof download>>['header']; delta: Buffer }> => {
        await api.createHabit({ accountLogicalId: fleet.logicalId, comment, pixels: [uniquePixel()] });
        await replica.synced();
        const got = await download(replica.daemon(), fleet.token, { logicalId: fleet.logicalId, heldVersion, heldSha256: sha256(held) });
        expect(got.header).toMatchObject({ encoding: ExportEncoding.EXPORT_ENCODING_FOSSIL_DELTA, baseSha256: sha256(held), payloadSizeBytes: got.bytes.length });
        expect(sha256(Buffer.from(applyDelta(held, got.bytes)))).toBe(got.header.sha256);
        return { header: got.header, delta: got.bytes };
      };
      /** Leaves what a killed process leaves: the pin of a delta download and its first `bytes`. */
      const leavePartial = async (header: { version: string; sizeBytes: number; sha256: string }, bytes: Buffer, payloadSizeBytes: number): Promise<void> => {
        await writeFile(`${dbPath}.download`, bytes);
        await writeFile(
          `${dbPath}.download.json`,
          JSON.stringify({ version: header.version, sizeBytes: header.sizeBytes, sha256: header.sha256, encoding: ExportEncoding.EXPORT_ENCODING_FOSSIL_DELTA, payloadSizeBytes, base: { version: heldVersion, sha256: sha256(held) } }),
        );
      };

      // Truncated: half the delta on disk; the download resumes it from there.
      const first = await change('for a truncated delta');
      await leavePartial(first.header, first.delta.subarray(0, first.delta.length >> 1), first.delta.length);
      d.sync.close();
      d = daemon(replica, dbPath);
      await d.sync.syncOnce();
      expect(d.last('download-started')).toMatchObject({ offset: first.delta.length >> 1, deltaBytes: first.delta.length });
      expect((await readFile(dbPath)).equals(await fullFile(replica))).toBe(true);

      // Corrupt: every byte of the delta arrived, but not the right ones. Fossil's checksum or
      // the SHA-256 catches it; the whole file is downloaded instead.
      await writeFile(dbPath, held);
      await writeFile(`${dbPath}.version`, JSON.stringify({ version: heldVersion, sha256: sha256(held), logicalId: fleet.logicalId }));
      const second = await change('for a corrupt delta');
      const corrupt = Buffer.from(second.delta);
      corrupt[corrupt.length - 3]! ^= 0x01;
      await leavePartial(second.header, corrupt, corrupt.length);
      d.sync.close();
      d = daemon(replica, dbPath);
      await d.sync.syncOnce();
      expect(d.last('delta-failed')).toMatchObject({ version: second.header.version });
      expect(d.last('installed')).not.toHaveProperty('deltaBytes');
      expect((await readFile(dbPath)).equals(await fullFile(replica))).toBe(true);

      // The held file was changed on disk after it was installed: not the delta's base.
      const installed = await readFile(dbPath);
      await change('for a changed base');
      const tampered = Buffer.from(installed);
      tampered[tampered.length - 1]! ^= 0x01;
      await writeFile(dbPath, tampered);
      await d.sync.syncOnce();
      expect(d.last('delta-failed')!.error).toMatch(/no longer the delta's base/);
      expect((await readFile(dbPath)).equals(await fullFile(replica))).toBe(true);
    } finally {
      d.sync.close();
      await replica.stop();
    }
  });

  it('sends old clients (no held file) the whole file, and refuses a held file named by half', async () => {
    const replica = await sys.startReplica();
    try {
      await replica.synced();
      const full = await download(replica.daemon(), fleet.token, { logicalId: fleet.logicalId });
      expect(full.header.encoding).toBe(ExportEncoding.EXPORT_ENCODING_UNSPECIFIED);
      expect(full.bytes.length).toBe(full.header.sizeBytes);
      // A held file this replica never had: the whole file.
      const unknown = await download(replica.daemon(), fleet.token, { logicalId: fleet.logicalId, heldVersion: 'f'.repeat(32), heldSha256: 'a'.repeat(64) });
      expect(unknown.header.encoding).toBe(ExportEncoding.EXPORT_ENCODING_UNSPECIFIED);
      expect(unknown.bytes.equals(full.bytes)).toBe(true);
      await expect(download(replica.daemon(), fleet.token, { logicalId: fleet.logicalId, heldVersion: 'f'.repeat(32) })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
      await expect(download(replica.daemon(), fleet.token, { logicalId: fleet.logicalId, heldVersion: 'f'.repeat(32), heldSha256: 'XYZ' })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    } finally {
      await replica.stop();
    }
  });
});
