/**
 * Downloads through a CDN, with a real one: Debian's nginx run with docs/cdn/nginx.conf in front of
 * a replica's HTTP origin. 2,000 simulated daemons and 20 DaemonSync clients fetch a new version
 * (files and deltas) through it; the replica serves each distinct file once; every daemon's bytes
 * are the same; forged, expired and misused signatures are refused by the replica (403, which the CDN does not keep); a URL that
 * fails sends DaemonSync back to DownloadExport.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DaemonSync } from '@titanbot/daemon-client';
import { ExportEncoding, type ExportHeader } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { freePort } from '@titanbot/service-kit/free-port';
import { applyDelta } from 'fossil-delta';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, provisionDevice, uniquePixel } from '@titanbot/read/test-support/admin';
import { download } from '@titanbot/read/test-support/daemon';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';
import { TestClock } from '@titanbot/write/test-support/test-clock';
import { startNginxCache, type NginxCache } from '../bench/src/lib/nginx.js';

const SIMULATED = 2_000;
const REAL = 20;

let sys: System;
let api: ReturnType<typeof adminApi>;
let fleet: Awaited<ReturnType<typeof provisionDevice>>;
let nginx: NginxCache;
let replica: Replica;
let origin: string;
const clock = new TestClock();
let dir: string;
let tokenFile: string;

beforeAll(async () => {
  sys = await startSystem();
  api = adminApi(sys.write);
  fleet = await provisionDevice(api);
  dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-cdn-'));
  tokenFile = path.join(dir, 'token.txt');
  await writeFile(tokenFile, `${fleet.token}\n`, { mode: 0o600 });
  for (let i = 0; i < 10; i++) await api.createHabit({ accountLogicalId: fleet.logicalId, comment: `seed ${i}`, pixels: [uniquePixel(), uniquePixel()] });
  origin = `127.0.0.1:${await freePort()}`;
  nginx = await startNginxCache(origin);
  // One device stands for the fleet here: its call budget is the fleet's.
  replica = await sys.startReplica({ EXPORT_HTTP_ADDR: origin, EXPORT_PUBLIC_BASE_URL: `http://${nginx.address}`, DAEMON_RPS: '100000', DAEMON_BURST: '100000' }, undefined, clock);
  await replica.synced();
});
afterAll(async () => {
  await nginx?.stop();
  await sys?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** What the replica's access log says it served with a body (200 or 206 to GET), by path. */
function servedByOrigin(r: Replica): Map<string, number> {
  const served = new Map<string, number>();
  for (const line of r.logs) {
    const entry = JSON.parse(line) as { msg: string; method?: string; path?: string; status?: number };
    if (entry.msg === 'export served' && entry.method === 'GET' && (entry.status === 200 || entry.status === 206)) served.set(entry.path!, (served.get(entry.path!) ?? 0) + 1);
  }
  return served;
}

/** A daemon's DownloadExport asking for a URL: the header (with `publicUrl`) and no chunk. */
async function offered(held?: ExportHeader): Promise<ExportHeader> {
  const answer = await download(replica.daemon(), fleet.token, {
    logicalId: fleet.logicalId,
    acceptPublicUrl: true,
    ...(held ? { heldVersion: held.version, heldSha256: held.sha256 } : {}),
  });
  expect(answer.chunkOffsets).toEqual([]);
  return answer.header;
}

/** GET `url` and its body. */
async function fetchBytes(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const response = await fetch(url, { headers });
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}

/** `url` with its host replaced by the replica's origin (what the CDN asks on a miss). */
const atOrigin = (url: string): string => url.replace(`http://${nginx.address}`, `http://${origin}`);

function realDaemon(name: string) {
  const events: { event: string; fields: Record<string, unknown> }[] = [];
  const dbPath = path.join(dir, `${name}.sqlite`);
  const sync = new DaemonSync({ server: replica.service.address, tokenFile, dbPath, logicalId: fleet.logicalId, logger: (event, fields) => events.push({ event, fields }) });
  return { sync, dbPath, events };
}

describe('downloads through a CDN (nginx)', () => {
  it('carries a new version to 2,000 simulated daemons and 20 DaemonSync clients while the replica serves each file and delta once', async () => {
    const real = Array.from({ length: REAL }, (_, i) => realDaemon(`real-${i}`));
    for (const d of real) expect(await d.sync.syncOnce()).toMatchObject({ changed: true });
    const first = await offered();
    const firstBytes = await readFile(real[0]!.dbPath);
    expect(sha256(firstBytes)).toBe(first.sha256);

    await api.createHabit({ accountLogicalId: fleet.logicalId, comment: 'the new version', pixels: [uniquePixel()] });
    await replica.synced();
    // Half the simulated fleet holds the first file and asks for a delta; half holds nothing.
    const simulated = await Promise.all(
      Array.from({ length: SIMULATED }, async (_, i) => {
        const header = await offered(i % 2 ? first : undefined);
        const { status, body } = await fetchBytes(header.publicUrl);
        expect(status).toBe(200);
        return { header, body };
      }),
    );
    const results = await Promise.all(real.map((d) => d.sync.syncOnce()));

    const second = simulated.find((s) => s.header.encoding === ExportEncoding.EXPORT_ENCODING_UNSPECIFIED)!.header;
    expect(second.sha256).not.toBe(first.sha256);
    const deltaPath = `/deltas/${first.sha256}/${second.sha256}`;
    for (const { header, body } of simulated) {
      expect(header).toMatchObject({ version: second.version, sha256: second.sha256 });
      expect(header.publicUrlExpireTime!.getTime()).toBeGreaterThan(clock.now());
      if (header.encoding === ExportEncoding.EXPORT_ENCODING_FOSSIL_DELTA) {
        expect(new URL(header.publicUrl).pathname).toBe(deltaPath);
        expect(body.length).toBe(header.payloadSizeBytes);
      } else {
        expect(new URL(header.publicUrl).pathname).toBe(`/exports/${second.sha256}`);
        expect(sha256(body)).toBe(second.sha256);
      }
    }
    const deltas = simulated.filter((s) => s.header.encoding === ExportEncoding.EXPORT_ENCODING_FOSSIL_DELTA);
    expect(deltas).toHaveLength(SIMULATED / 2);
    expect(new Set(deltas.map((d) => sha256(d.body))).size).toBe(1);
    expect(sha256(Buffer.from(applyDelta(firstBytes, deltas[0]!.body)))).toBe(second.sha256);
    // The real daemons took the delta through the CDN too, and hold the same file.
    for (const [i, d] of real.entries()) {
      expect(results[i]).toEqual({ version: second.version, changed: true, bytes: deltas[0]!.header.payloadSizeBytes });
      expect(d.events.map((e) => e.event)).not.toContain('public-url-failed');
      expect(sha256(await readFile(d.dbPath))).toBe(second.sha256);
    }

    // Each distinct payload left the replica once: the CDN carried every other copy.
    expect(Object.fromEntries(servedByOrigin(replica))).toEqual({ [`/exports/${first.sha256}`]: 1, [`/exports/${second.sha256}`]: 1, [deltaPath]: 1 });
    const log = await nginx.accessLog();
    expect(log).toHaveLength(REAL * 2 + SIMULATED);
    expect(log.filter((l) => / 200 (MISS|HIT) /.test(l))).toHaveLength(log.length);
    expect(log.filter((l) => / MISS /.test(l))).toHaveLength(3);
    for (const d of real) d.sync.close();
  });

  it('answers as an immutable, content-addressed resource: strong ETag, Range, If-None-Match, HEAD', async () => {
    const header = await offered();
    const url = atOrigin(header.publicUrl);
    const whole = await fetchBytes(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(whole.headers.get('etag')).toBe(`"${header.sha256}"`);
    expect(whole.headers.get('content-type')).toBe('application/vnd.sqlite3');
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(sha256(whole.body)).toBe(header.sha256);
    const tail = await fetchBytes(url, { range: 'bytes=100-' });
    expect(tail.status).toBe(206);
    expect(tail.headers.get('content-range')).toBe(`bytes 100-${header.sizeBytes - 1}/${header.sizeBytes}`);
    expect(tail.body.equals(whole.body.subarray(100))).toBe(true);
    expect((await fetchBytes(url, { range: `bytes=${header.sizeBytes + 10}-` })).status).toBe(416);
    expect((await fetchBytes(url, { 'if-none-match': `"${header.sha256}"` })).status).toBe(304);
    const head = await fetch(url, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length'), head.headers.get('etag')]).toEqual([200, String(header.sizeBytes), `"${header.sha256}"`]);
  });

  it('refuses a forged signature, a signature of another path, no signature and an expired URL (403, not kept by the CDN)', async () => {
    const header = await offered();
    const url = new URL(atOrigin(header.publicUrl));
    const forged = new URL(url);
    const signature = url.searchParams.get('signature')!;
    forged.searchParams.set('signature', `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`);
    const refusal = await fetchBytes(forged.toString());
    expect([refusal.status, refusal.headers.get('cache-control'), JSON.parse(refusal.body.toString()).detail]).toEqual([403, 'no-store', "the URL's signature is forged"]);
    const otherPath = new URL(url);
    otherPath.pathname = `/exports/${'0'.repeat(64)}`;
    expect((await fetchBytes(otherPath.toString())).status).toBe(403);
    const unsigned = new URL(url);
    unsigned.search = '';
    expect((await fetchBytes(unsigned.toString())).status).toBe(403);

    // Through the CDN, a refusal of a path it has not cached is not kept: the valid URL then works.
    await api.createHabit({ accountLogicalId: fleet.logicalId, comment: 'uncached', pixels: [uniquePixel()] });
    await replica.synced();
    const fresh = await offered();
    const freshForged = new URL(fresh.publicUrl);
    freshForged.searchParams.set('signature', 'A'.repeat(43));
    expect((await fetchBytes(freshForged.toString())).status).toBe(403);
    expect((await fetchBytes(fresh.publicUrl)).status).toBe(200);

    clock.advance(5 * 60_000 + 1_000);
    const expired = await fetchBytes(url.toString());
    expect([expired.status, JSON.parse(expired.body.toString()).detail]).toEqual([403, 'the URL has expired; ask DownloadExport for a new one']);
    // A new answer carries a new URL, valid again.
    expect((await fetchBytes(atOrigin((await offered()).publicUrl))).status).toBe(200);
  });

  it('resumes a partial file a previous process left with a Range request through the CDN', async () => {
    const header = await offered();
    const whole = (await fetchBytes(header.publicUrl)).body;
    const d = realDaemon('resumed');
    await writeFile(`${d.dbPath}.download`, whole.subarray(0, 1000));
    await writeFile(`${d.dbPath}.download.json`, JSON.stringify({ version: header.version, sizeBytes: header.sizeBytes, sha256: header.sha256 }));
    expect(await d.sync.syncOnce()).toMatchObject({ version: header.version, changed: true });
    expect((await readFile(d.dbPath)).equals(whole)).toBe(true);
    expect(d.events.map((e) => e.event)).not.toContain('public-url-failed');
    expect((await nginx.accessLog()).at(-1)).toBe(`GET /exports/${header.sha256} 206 HIT ${header.sizeBytes - 1000}`);
    d.sync.close();
  });

  it('falls back to DownloadExport when the URL cannot be fetched, and ends with the same file', async () => {
    const unreachable = `127.0.0.1:${await freePort()}`;
    const broken = await sys.startReplica({ EXPORT_HTTP_ADDR: `127.0.0.1:${await freePort()}`, EXPORT_PUBLIC_BASE_URL: `http://${unreachable}` });
    try {
      await broken.synced();
      const events: string[] = [];
      const dbPath = path.join(dir, 'fallback.sqlite');
      const sync = new DaemonSync({ server: broken.service.address, tokenFile, dbPath, logicalId: fleet.logicalId, logger: (event) => events.push(event) });
      const result = await sync.syncOnce();
      expect(events).toContain('public-url-failed');
      expect(sha256(await readFile(dbPath))).toBe((await offered()).sha256);
      expect(result.changed).toBe(true);
      sync.close();
    } finally {
      await broken.stop();
    }
  });
});
