import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  Server,
  ServerCredentials,
  status,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { generateDaemonToken } from '@titanbot/service-kit/daemon-token';
import { DomainError } from '@titanbot/service-kit/errors';
import { toStatusError } from '@titanbot/service-kit/status';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DaemonServiceService,
  DownloadExportResponse,
  type DaemonServiceServer,
  type DownloadExportRequest,
  type Token,
} from './index.js';
import { createDaemonClient } from './client.js';
import { DaemonSync, type DaemonSyncOptions } from './sync.js';

const CHUNK = 1_000;

/** Deterministic bytes standing in for a daemon database. */
const fileBytes = (seed: number, size = 9_500): Buffer => Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + seed * 7) % 251));
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

type DownloadPlan = { cutAfterChunks?: number; before?: () => void } | undefined;

/** A DaemonService on 127.0.0.1:0 serving exports, versions and token rotation the test controls. */
async function startFakeServer(token: string) {
  const fake = {
    address: '',
    latest: '',
    exports: new Map<string, Buffer>(),
    /** Announced sha256 per version when it should lie. */
    wrongSha: new Map<string, string>(),
    valid: new Set([token]),
    tokenInfo: { uuid: 't1', deviceUuid: 'd1', prefix: token.slice(0, 10), createTime: new Date(), expireTime: new Date(Date.now() + 3_600_000) } as Token,
    /** Every call: method, x-api-key, request. */
    calls: [] as { method: string; key: string; request: unknown }[],
    /** What the n-th (0-based) DownloadExport does. */
    downloadPlans: [] as DownloadPlan[],
    issued: [] as string[],
    watchers: new Set<ServerWritableStream<unknown, { version: string; revision: number }>>(),
    cancelledWatches: 0,
    publish(version: string, bytes: Buffer): void {
      fake.exports.set(version, bytes);
      fake.latest = version;
      for (const w of fake.watchers) w.write({ version, revision: 0 });
    },
    /**
     * The DownloadExport requests made, without held_version/held_sha256 when they were empty (no
     * file held), and without accept_public_url (this server offers no URL; `acceptedUrls` tells).
     */
    downloads(): Partial<DownloadExportRequest>[] {
      return fake.calls
        .filter((c) => c.method === 'downloadExport')
        .map((c) => {
          const { heldVersion, heldSha256, acceptPublicUrl: _accepted, ...rest } = c.request as DownloadExportRequest;
          return heldVersion || heldSha256 ? { ...rest, heldVersion, heldSha256 } : rest;
        });
    },
    /** accept_public_url of each DownloadExport request made. */
    acceptedUrls(): boolean[] {
      return fake.calls.filter((c) => c.method === 'downloadExport').map((c) => (c.request as DownloadExportRequest).acceptPublicUrl);
    },
    keys(method: string): string[] {
      return fake.calls.filter((c) => c.method === method).map((c) => c.key);
    },
  };
  const authorize = (method: string, call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>): boolean => {
    const key = String(call.metadata.get('x-api-key')[0] ?? '');
    fake.calls.push({ method, key, request: call.request });
    return fake.valid.has(key);
  };
  // Errors as the real read service sends them: code plus the catalogue's ErrorInfo reason.
  const denied = toStatusError(new DomainError('UNAUTHENTICATED', 'unknown token'));
  const impl: Partial<DaemonServiceServer> = {
    getToken(call, cb) {
      if (!authorize('getToken', call)) return cb(denied);
      cb(null, fake.tokenInfo);
    },
    rotateToken(call, cb) {
      if (!authorize('rotateToken', call)) return cb(denied);
      const next = generateDaemonToken();
      fake.valid.add(next);
      fake.issued.push(next);
      const tokenInfo = { ...fake.tokenInfo, createTime: new Date(), expireTime: new Date(Date.now() + 3_600_000) };
      fake.tokenInfo = tokenInfo;
      cb(null, { token: next, tokenInfo, previousExpireTime: new Date(Date.now() + 60_000) });
    },
    reportStatus(call, cb) {
      if (!authorize('reportStatus', call)) return cb(denied);
      cb(null, {});
    },
    checkVersion(call, cb) {
      if (!authorize('checkVersion', call)) return cb(denied);
      cb(null, { version: fake.latest, changed: fake.latest !== call.request.knownVersion, revision: 0 });
    },
    watchVersion(call) {
      if (!authorize('watchVersion', call)) return call.emit('error', denied);
      fake.watchers.add(call);
      call.on('cancelled', () => {
        fake.watchers.delete(call);
        fake.cancelledWatches++;
      });
      if (call.request.knownVersion !== fake.latest) call.write({ version: fake.latest, revision: 0 });
    },
    downloadExport(call) {
      const attempt = fake.downloads().length;
      if (!authorize('downloadExport', call)) return call.emit('error', denied);
      const plan = fake.downloadPlans[attempt];
      const version = call.request.version || fake.latest;
      plan?.before?.();
      const bytes = fake.exports.get(version);
      if (!bytes) return call.emit('error', toStatusError(new DomainError('EXPORT_VERSION_GONE', `export ${version} is gone`)));
      const send = (m: DownloadExportResponse): boolean => call.write(DownloadExportResponse.fromPartial(m));
      send({ kind: { $case: 'header', value: { version, sizeBytes: bytes.length, sha256: fake.wrongSha.get(version) ?? sha256(bytes), schemaVersion: 1, fileName: 'titanbotd.sqlite', mediaType: 'application/vnd.sqlite3', revision: 0, encoding: 0, payloadSizeBytes: bytes.length, baseSha256: '', publicUrl: '', publicUrlExpireTime: undefined } } });
      let sent = 0;
      for (let offset = call.request.offset; offset < bytes.length; offset += CHUNK) {
        if (sent++ === plan?.cutAfterChunks) return call.emit('error', { code: status.UNAVAILABLE, details: 'connection reset' });
        send({ kind: { $case: 'chunk', value: { offset, data: bytes.subarray(offset, offset + CHUNK) } } });
      }
      call.end();
    },
  };
  const server = new Server();
  server.addService(DaemonServiceService, impl as UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  fake.address = `127.0.0.1:${port}`;
  return Object.assign(fake, { stop: () => server.forceShutdown() });
}

type Fake = Awaited<ReturnType<typeof startFakeServer>>;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A fake server, a temp dir with a token file, and a DaemonSync pointed at both. */
async function setup(options: Partial<DaemonSyncOptions> = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'daemon-sync-'));
  const token = generateDaemonToken();
  const tokenFile = path.join(dir, 'token');
  await writeFile(tokenFile, `${token}\n`);
  const fake = await startFakeServer(token);
  const client = createDaemonClient(fake.address);
  const events: { event: string; fields: Record<string, unknown> }[] = [];
  const dbPath = path.join(dir, 'titanbotd.sqlite');
  const sync = new DaemonSync({ server: fake.address, tokenFile, dbPath, logicalId: 7, client, logger: (event, fields) => events.push({ event, fields }), ...options });
  cleanups.push(
    () => rm(dir, { recursive: true, force: true }),
    () => fake.stop(),
    () => client.close(),
  );
  return { dir, token, tokenFile, dbPath, fake, sync, events };
}

/** vi.waitFor until `condition` holds. */
const until = (condition: () => Promise<boolean> | boolean, what: string): Promise<void> =>
  vi.waitFor(async () => expect(await condition(), what).toBe(true), { timeout: 5_000, interval: 20 });

/** The version the sidecar records ('' when there is none). */
const readVersion = (dbPath: string): Promise<string> =>
  readFile(`${dbPath}.version`, 'utf8').then(
    (s) => (s.trim().startsWith('{') ? (JSON.parse(s) as { version: string }).version : s.trim()),
    () => '',
  );

describe('DaemonSync.syncOnce', () => {
  it('downloads, verifies and installs the latest export with its version, then reports unchanged', async () => {
    const { fake, sync, dbPath, dir, token } = await setup();
    const v1 = fileBytes(1);
    fake.publish('e.1', v1);

    expect(await sync.syncOnce()).toEqual({ version: 'e.1', changed: true, bytes: v1.length });
    expect(await readFile(dbPath)).toEqual(v1);
    expect(await readVersion(dbPath)).toBe('e.1');
    expect((await readdir(dir)).sort()).toEqual(['titanbotd.sqlite', 'titanbotd.sqlite.version', 'token']);
    expect(fake.downloads()).toEqual([{ logicalId: 7, version: '', offset: 0 }]);
    // It can fetch from a URL; the replica offered none, so the chunks came.
    expect(fake.acceptedUrls()).toEqual([true]);

    expect(await sync.syncOnce()).toEqual({ version: 'e.1', changed: false, bytes: 0 });
    expect(fake.calls.filter((c) => c.method === 'checkVersion').map((c) => c.request)).toEqual([
      { logicalId: 7, knownVersion: '' },
      { logicalId: 7, knownVersion: 'e.1' },
    ]);
    expect(fake.downloads()).toHaveLength(1);
    expect(new Set(fake.calls.map((c) => c.key))).toEqual(new Set([token]));
  });

  it('records a new version without downloading again when the server\'s file is the one held (same SHA-256)', async () => {
    const { fake, sync, dbPath, events } = await setup();
    const bytes = fileBytes(1);
    fake.publish('e.1', bytes);
    await sync.syncOnce();
    fake.publish('e.2', Buffer.from(bytes));

    expect(await sync.syncOnce()).toEqual({ version: 'e.2', changed: true, bytes: 0 });
    expect(await readVersion(dbPath)).toBe('e.2');
    expect(await readFile(dbPath)).toEqual(bytes);
    expect(events.filter((e) => e.event === 'installed')).toHaveLength(1);
    expect(events.find((e) => e.event === 'already-held')?.fields).toEqual({ version: 'e.2', sha256: sha256(bytes) });
    expect(await sync.syncOnce()).toEqual({ version: 'e.2', changed: false, bytes: 0 });
  });

  it('keeps the scope beside the held version: another logical id on the same file downloads', async () => {
    const { fake, sync, dbPath, tokenFile, events } = await setup();
    fake.publish('e.1', fileBytes(1));
    await sync.syncOnce();
    const other = new DaemonSync({ server: fake.address, tokenFile, dbPath, logicalId: 8, client: createDaemonClient(fake.address), logger: (event, fields) => events.push({ event, fields }) });
    try {
      fake.publish('e.1', fileBytes(2));
      expect(await other.syncOnce()).toEqual({ version: 'e.1', changed: true, bytes: fileBytes(2).length });
      expect(fake.calls.filter((c) => c.method === 'checkVersion').at(-1)!.request).toEqual({ logicalId: 8, knownVersion: '' });
      expect(await readFile(dbPath)).toEqual(fileBytes(2));
    } finally {
      other.close();
    }
  });

  it('resumes a broken download from the bytes written, pinned to the version it started', async () => {
    const { fake, sync, dbPath, events } = await setup();
    const v1 = fileBytes(1);
    fake.publish('e.1', v1);
    // A newer export appears meanwhile: the resume must still finish e.1, not mix the two.
    fake.downloadPlans = [{ cutAfterChunks: 2 }, { before: () => fake.publish('e.2', fileBytes(2)) }];

    expect(await sync.syncOnce()).toEqual({ version: 'e.1', changed: true, bytes: v1.length });
    expect(fake.downloads()).toEqual([
      { logicalId: 7, version: '', offset: 0 },
      { logicalId: 7, version: 'e.1', offset: 2 * CHUNK },
    ]);
    expect(await readFile(dbPath)).toEqual(v1);
    expect(await readVersion(dbPath)).toBe('e.1');
    expect(events.find((e) => e.event === 'download-interrupted')?.fields).toMatchObject({ code: 'UNAVAILABLE', offset: 2 * CHUNK });
  });

  it('resumes a partial download a previous process left behind', async () => {
    const { fake, sync, dbPath } = await setup();
    const v1 = fileBytes(1);
    fake.publish('e.1', v1);
    await writeFile(`${dbPath}.download`, v1.subarray(0, 3 * CHUNK));
    await writeFile(`${dbPath}.download.json`, JSON.stringify({ version: 'e.1', sizeBytes: v1.length, sha256: sha256(v1) }));

    await sync.syncOnce();
    expect(fake.downloads()).toEqual([{ logicalId: 7, version: 'e.1', offset: 3 * CHUNK }]);
    expect(await readFile(dbPath)).toEqual(v1);
  });

  it('restarts from zero with the latest version when the pinned one is gone (FAILED_PRECONDITION)', async () => {
    const { fake, sync, dbPath, dir, events } = await setup();
    fake.publish('e.1', fileBytes(1));
    const v2 = fileBytes(2, 4_321);
    fake.downloadPlans = [
      { cutAfterChunks: 2 },
      {
        before: () => {
          fake.exports.delete('e.1');
          fake.publish('e.2', v2);
        },
      },
    ];

    expect(await sync.syncOnce()).toEqual({ version: 'e.2', changed: true, bytes: v2.length });
    expect(fake.downloads()).toEqual([
      { logicalId: 7, version: '', offset: 0 },
      { logicalId: 7, version: 'e.1', offset: 2 * CHUNK },
      { logicalId: 7, version: '', offset: 0 },
    ]);
    expect(await readFile(dbPath)).toEqual(v2);
    expect(await readVersion(dbPath)).toBe('e.2');
    expect(events.find((e) => e.event === 'download-restarted')?.fields).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'EXPORT_VERSION_GONE', version: 'e.1' });
    expect((await readdir(dir)).sort()).toEqual(['titanbotd.sqlite', 'titanbotd.sqlite.version', 'token']);
  });

  it('rejects a file whose SHA-256 differs from the header and leaves the installed file untouched', async () => {
    const { fake, sync, dbPath, dir } = await setup();
    const old = fileBytes(0, 2_000);
    await writeFile(dbPath, old);
    // An older client's sidecar: the version alone.
    await writeFile(`${dbPath}.version`, 'e.0\n');
    fake.publish('e.1', fileBytes(1));
    fake.wrongSha.set('e.1', sha256(Buffer.from('something else')));

    await expect(sync.syncOnce()).rejects.toThrow(/e\.1 failed verification/);
    expect(await readFile(dbPath)).toEqual(old);
    expect(await readVersion(dbPath)).toBe('e.0');
    expect((await readdir(dir)).sort()).toEqual(['titanbotd.sqlite', 'titanbotd.sqlite.version', 'token']);
  });

  it('rotates a token past 80 % of its life, persists it atomically and uses it for later calls', async () => {
    const { fake, sync, tokenFile, token, dir, events } = await setup();
    fake.publish('e.1', fileBytes(1));
    fake.tokenInfo = { ...fake.tokenInfo, createTime: new Date(Date.now() - 90_000), expireTime: new Date(Date.now() + 10_000) };

    await sync.syncOnce();
    expect(fake.issued).toHaveLength(1);
    const next = fake.issued[0];
    expect((await readFile(tokenFile, 'utf8')).trim()).toBe(next);
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    expect(fake.keys('getToken')).toEqual([token]);
    expect(fake.keys('rotateToken')).toEqual([token]);
    expect(fake.keys('checkVersion')).toEqual([next]);
    expect(fake.keys('downloadExport')).toEqual([next]);
    expect((await readdir(dir)).sort()).toEqual(['titanbotd.sqlite', 'titanbotd.sqlite.version', 'token']);
    expect(events.find((e) => e.event === 'token-rotated')?.fields.prefix).toBe(next?.slice(0, 10));

    // Not yet due (fresh token): no second rotation.
    await sync.syncOnce();
    expect(fake.issued).toHaveLength(1);
  });

  it('rejects a malformed token file before making any call', async () => {
    const { fake, sync, tokenFile, token } = await setup();
    await writeFile(tokenFile, `${token.slice(0, -1)}x\n`);
    await expect(sync.syncOnce()).rejects.toThrow(/does not hold a well-formed daemon token/);
    await expect(sync.watch(new AbortController().signal)).rejects.toThrow(/does not hold a well-formed daemon token/);
    expect(fake.calls).toEqual([]);
  });
});

describe('DaemonSync.watch', () => {
  it('downloads each announced version and stops cleanly on abort', async () => {
    const { fake, sync, dbPath } = await setup();
    fake.publish('e.1', fileBytes(1));
    const stop = new AbortController();
    const watching = sync.watch(stop.signal);

    await until(async () => (await readVersion(dbPath)) === 'e.1', 'e.1 installed');
    expect(await readFile(dbPath)).toEqual(fileBytes(1));
    const v2 = fileBytes(2, 5_555);
    fake.publish('e.2', v2);
    await until(async () => (await readVersion(dbPath)) === 'e.2', 'e.2 installed');
    expect(await readFile(dbPath)).toEqual(v2);
    expect(fake.calls.filter((c) => c.method === 'watchVersion').map((c) => c.request)).toEqual([{ logicalId: 7, knownVersion: '' }]);
    expect(fake.downloads()).toHaveLength(2);

    stop.abort();
    await watching;
    await until(() => fake.cancelledWatches === 1, 'the watch call to be cancelled');
    expect(fake.watchers.size).toBe(0);
  });

  it('coalesces versions announced during a download into one more download of the latest', async () => {
    const { fake, sync, dbPath } = await setup();
    fake.publish('e.1', fileBytes(1));
    // While e.1 is being served, e.2 and e.3 are announced.
    fake.downloadPlans = [{ before: () => ['e.2', 'e.3'].forEach((v, i) => fake.publish(v, fileBytes(i + 2))) }];
    const stop = new AbortController();
    const watching = sync.watch(stop.signal);

    await until(async () => (await readVersion(dbPath)) === 'e.3', 'e.3 installed');
    await new Promise((r) => setTimeout(r, 100));
    // The second download names the file held, so a server could answer with a delta from it.
    expect(fake.downloads()).toEqual([
      { logicalId: 7, version: '', offset: 0 },
      { logicalId: 7, version: '', offset: 0, heldVersion: 'e.1', heldSha256: sha256(fileBytes(1)) },
    ]);
    expect(await readFile(dbPath)).toEqual(fileBytes(3));
    stop.abort();
    await watching;
  });

  it('reconnects after the stream fails and rotates the token when due, using the new one afterwards', async () => {
    const { fake, sync, dbPath, tokenFile, token } = await setup();
    fake.publish('e.1', fileBytes(1));
    // Due in about 300 ms.
    fake.tokenInfo = { ...fake.tokenInfo, createTime: new Date(Date.now() - 1_200), expireTime: new Date(Date.now() + 500) };
    const stop = new AbortController();
    const watching = sync.watch(stop.signal);

    await until(async () => (await readVersion(dbPath)) === 'e.1', 'e.1 installed');
    await until(() => fake.issued.length === 1, 'a rotation');
    const next = fake.issued[0] ?? '';
    await until(async () => (await readFile(tokenFile, 'utf8')).trim() === next, 'the new token in the token file');
    fake.valid.delete(token);
    for (const w of fake.watchers) w.emit('error', { code: status.UNAVAILABLE, details: 'server restarting' });
    fake.watchers.clear();
    fake.publish('e.2', fileBytes(2));

    await until(async () => (await readVersion(dbPath)) === 'e.2', 'e.2 installed');
    expect(fake.keys('watchVersion')).toEqual([token, next]);
    expect(fake.keys('downloadExport')).toEqual([token, next]);
    stop.abort();
    await watching;
  });
});
