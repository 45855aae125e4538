/**
 * An attacker holding one daemon token (or one imported legacy token): each finding of the probe,
 * one by one. Revocation ends a whole rotation chain; every budget (calls, watches, log lines,
 * failed keys) holds per device or per peer whatever tokens are used; nothing a client sends
 * before its credential (HTTP/2 streams, HTTP bodies, slow bytes) holds the replica.
 */
import { randomUUID } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import { status } from '@grpc/grpc-js';
import { DaemonTokenServiceClient, ImportLegacyDaemonTokenRequest } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { ListLogsRequest, LogServiceClient } from '@titanbot/contracts/titanbot/admin/v1/log_service';
import type { DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { generateDaemonToken } from '@titanbot/service-kit/daemon-token';
import { adminApi, provisionDevice } from '@titanbot/read/test-support/admin';
import { checkVersion } from '@titanbot/read/test-support/daemon';
import { watch } from '@titanbot/read/test-support/more';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';
import { call, errorDetails, failure, uniqueInt } from '@titanbot/write/test-support/harness';
import { TestClock } from '@titanbot/write/test-support/test-clock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let sys: System;
let api: ReturnType<typeof adminApi>;
/** The replica's clocks: budgets refill only when a test advances them. */
const clock = new TestClock();
let replica: Replica;
let daemon: DaemonServiceClient;
let legacyBase: string;

const LIMITS = {
  LEGACY_HTTP_ADDR: '127.0.0.1:0',
  DAEMON_RPS: '5',
  DAEMON_BURST: '10',
  DAEMON_MAX_WATCHES: '2',
  DAEMON_LOG_LINES_PER_SECOND: '100',
  DAEMON_LOG_LINES_BURST: '1000',
  AUTH_FAILURES_PER_SECOND: '1',
  AUTH_FAILURES_BURST: '5',
  GRPC_MAX_CONCURRENT_STREAMS: '64',
  GRPC_REQUEST_MESSAGE_TIMEOUT: '300ms',
  LEGACY_HTTP_REQUEST_TIMEOUT: '500ms',
};

beforeAll(async () => {
  sys = await startSystem();
  api = adminApi(sys.write);
  replica = await sys.startReplica(LIMITS, undefined, clock);
  await replica.service.consumer.caughtUp;
  daemon = replica.daemon();
  legacyBase = `http://${replica.service.legacyHttpAddress}`;
});
afterAll(async () => {
  await sys?.stop();
});

/** A device with a bound account and a daemon token, on the replica, with every budget full again. */
async function device() {
  const provisioned = await provisionDevice(api);
  await replica.synced();
  // Past every refill (calls 2 s, log lines 10 s, failed keys 5 s): earlier tests' spending is gone.
  clock.advance(60_000);
  return provisioned;
}

/** Rotates `token` through the replica (RotateToken), as a daemon does. */
const rotate = async (token: string): Promise<string> => (await call(daemon, daemon.rotateToken, {}, token)).token;

/** Whether `token` still authenticates on the replica. */
const works = async (token: string, logicalId: number): Promise<boolean> =>
  checkVersion(daemon, token, logicalId).then(
    () => true,
    (err: { code: number }) => {
      if (err.code !== status.UNAUTHENTICATED) throw err;
      return false;
    },
  );

/** A raw HTTP/1.1 exchange on one socket: writes `head` (and `body` when given), resolves with what came back once the server closes it. */
function rawHttp(head: string, body?: Buffer): Promise<{ response: string; ms: number }> {
  const [host, port] = replica.service.legacyHttpAddress!.split(':');
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect(Number(port), host!, () => {
      socket.write(head);
      if (body) socket.write(body);
    });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve({ response: Buffer.concat(chunks).toString('latin1'), ms: performance.now() - started }));
  });
}

describe('1. revocation ends the whole rotation chain; budgets are per device', () => {
  it('revoking the first token of a chain ends every token rotated from it', async () => {
    const fleet = await device();
    const chain = [fleet.token];
    for (let i = 0; i < 3; i++) chain.push(await rotate(chain.at(-1)!));
    for (const t of chain) expect(await works(t, fleet.logicalId)).toBe(true);

    await api.revokeToken(fleet.tokenUuid);
    await replica.synced();
    for (const [i, t] of chain.entries()) expect(await works(t, fleet.logicalId), `token ${i} of the chain`).toBe(false);
  });

  it('revoking the newest token ends the older ones still in their grace', async () => {
    const fleet = await device();
    const chain = [fleet.token];
    for (let i = 0; i < 3; i++) chain.push(await rotate(chain.at(-1)!));
    const newest = (await call(daemon, daemon.getToken, {}, chain.at(-1)!)).uuid;
    // Another token of the same device, not of this chain, is left alone.
    const other = await api.issueToken(fleet.device.uuid);
    await replica.synced();

    const revoked = await api.revokeToken(newest);
    expect(revoked.uuid).toBe(newest);
    await replica.synced();
    for (const [i, t] of chain.entries()) expect(await works(t, fleet.logicalId), `token ${i} of the chain`).toBe(false);
    expect(await works(other.token, fleet.logicalId)).toBe(true);
  });

  it('tokens of one device share its call budget (DAEMON_BURST=10)', async () => {
    const fleet = await device();
    const second = await rotate(fleet.token);
    for (let i = 0; i < 5; i++) await checkVersion(daemon, fleet.token, fleet.logicalId);
    for (let i = 0; i < 4; i++) await checkVersion(daemon, second, fleet.logicalId);
    // The rotation and nine checks spent the burst: neither token gets an eleventh call.
    for (const t of [fleet.token, second]) {
      const refused = await failure(checkVersion(daemon, t, fleet.logicalId));
      expect([refused.code, refused.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'RATE_LIMITED']);
    }
  });
});

describe('2. HTTP/2 streams before any credential', () => {
  it('announces GRPC_MAX_CONCURRENT_STREAMS and ends a stream whose request message never comes', async () => {
    const session = http2.connect(`http://${replica.service.address}`);
    try {
      const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
      expect(settings.maxConcurrentStreams).toBe(64);
      // Headers only: no message, no key. The server ends it with a status instead of holding it.
      const stream = session.request({
        ':method': 'POST',
        ':path': '/titanbot.daemon.v1.DaemonService/CheckVersion',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        stream.on('trailers', resolve);
        stream.on('response', (headers) => {
          if (headers['grpc-status'] !== undefined) resolve(headers);
        });
        stream.on('error', reject);
      });
      expect(trailers['grpc-status']).toBe(String(status.DEADLINE_EXCEEDED));
      expect(decodeURIComponent(String(trailers['grpc-message']))).toMatch(/request message did not arrive within 300 ms/);
    } finally {
      session.destroy();
    }
  });
});

describe('3. and 7. legacy bodies: limited per route, not read before the path and the key', () => {
  it('refuses a body over the route limit (413) and a deeply nested one (400) before parsing it', async () => {
    const fleet = await device();
    const legacy = `legacy token ${randomUUID()}`;
    await importLegacy(legacy, fleet.device.uuid);
    const post = (path: string, body: string) => fetch(`${legacyBase}${path}`, { method: 'POST', headers: { 'X-API-KEY': legacy }, body });

    // One line is at most 16,384 characters: a body far over what one line can take is 413.
    const huge = await post('/daemon/logs', JSON.stringify({ message: 'x'.repeat(200_000) }));
    expect(huge.status).toBe(413);
    expect(huge.headers.get('content-type')).toBe('application/problem+json');
    // A bulk request is at most one WriteLogs message (4 MiB).
    expect((await post('/daemon/logs/bulk', '['.repeat(5 * 1024 * 1024))).status).toBe(413);
    // Nesting within the size limit is refused before JSON.parse builds it.
    const nested = await post('/daemon/logs/bulk', `{"log_dto_list":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    expect(nested.status).toBe(400);
    expect(((await nested.json()) as { detail: string }).detail).toMatch(/nested deeper than 8 levels/);
  });

  it('answers an unknown path, an unknown key and a forbidden route before the body arrives', async () => {
    const fleet = await device();
    // Headers announcing 19.8 MB that never come: the answer must not wait for them.
    const head = (path: string, key: string) =>
      `POST ${path} HTTP/1.1\r\nHost: replica\r\nX-API-KEY: ${key}\r\nContent-Type: application/json\r\nContent-Length: 19800000\r\n\r\n`;
    const legacy = `legacy token ${randomUUID()}`;
    await importLegacy(legacy, fleet.device.uuid);
    for (const [path, key, code] of [
      ['/daemon/nowhere', legacy, 404],
      ['/daemon/logs', 'not a known token', 401],
      ['/daemon/habits', legacy, 403],
    ] as const) {
      const { response } = await rawHttp(head(path, key));
      expect(response, path).toMatch(new RegExp(`^HTTP/1.1 ${code} `));
      expect(response.toLowerCase(), path).toContain('connection: close');
    }
  });

  it('closes a request whose body trickles in, with a problem+json 408', async () => {
    const fleet = await device();
    const legacy = `legacy token ${randomUUID()}`;
    await importLegacy(legacy, fleet.device.uuid);
    // One byte of 100, then nothing: LEGACY_HTTP_REQUEST_TIMEOUT (500 ms) ends it.
    const { response } = await rawHttp(`POST /daemon/logs HTTP/1.1\r\nHost: replica\r\nX-API-KEY: ${legacy}\r\nContent-Length: 100\r\n\r\n`, Buffer.from('{'));
    expect(response).toMatch(/^HTTP\/1.1 408 /);
    expect(response).toContain('Content-Type: application/problem+json');
    expect(JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 408, title: 'Request Timeout' });
  });
});

describe('4. concurrent watches per device', () => {
  it('refuses a watch over DAEMON_MAX_WATCHES whichever token opens it, and admits one again when another closes', async () => {
    const fleet = await device();
    const second = await api.issueToken(fleet.device.uuid);
    await replica.synced();
    const first = watch(daemon, fleet.token, fleet.logicalId, '');
    const other = watch(daemon, second.token, fleet.logicalId, '');
    await Promise.all([first.next(1), other.next(1)]);
    for (const token of [fleet.token, second.token]) {
      const refused = await watch(daemon, token, fleet.logicalId, '').error;
      expect(refused?.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(errorDetails(refused!)).toMatchObject({ reason: 'WATCH_LIMIT', retryDelayMs: 5000 });
    }
    first.cancel();
    await first.error;
    // The slot is free once the replica has seen the cancel.
    await expect
      .poll(async () => {
        const again = watch(daemon, fleet.token, fleet.logicalId, '');
        const outcome = await Promise.race([again.next(1).then(() => 'open'), again.error.then(() => 'refused')]);
        again.cancel();
        return outcome;
      })
      .toBe('open');
    other.cancel();
  });
});

describe('5. log lines are charged by line, on both surfaces', () => {
  it('refuses a bulk of more than 1,000 lines, and charges a bulk of 1,000 as 1,000 calls', async () => {
    const fleet = await device();
    const legacy = `legacy token ${randomUUID()}`;
    await importLegacy(legacy, fleet.device.uuid);
    const bulk = (n: number) =>
      fetch(`${legacyBase}/daemon/logs/bulk`, { method: 'POST', headers: { 'X-API-KEY': legacy }, body: JSON.stringify({ log_dto_list: Array.from({ length: n }, () => ({ message: '' })) }) });

    const tooMany = await bulk(1001);
    expect(tooMany.status).toBe(422);
    expect(((await tooMany.json()) as { errors: Record<string, string[]> }).errors).toEqual({ log_dto_list: ['This collection should contain 1000 elements or less.'] });

    expect((await bulk(1000)).status).toBe(201);
    // The device's 1,000-line burst is spent: one more line waits 10 ms (100 lines per second)...
    const spent = await fetch(`${legacyBase}/daemon/logs`, { method: 'POST', headers: { 'X-API-KEY': legacy }, body: '{"message":"one more"}' });
    expect(spent.status).toBe(429);
    expect(spent.headers.get('retry-after')).toBe('1');
    // ...on the gRPC API too, with any of the device's tokens.
    const refused = await failure(call(daemon, daemon.writeLogs, { lines: [{ line: 'one more' }], requestId: randomUUID() }, fleet.token));
    expect([refused.code, refused.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'LOG_RATE_LIMITED']);
    expect(refused.retryDelayMs).toBe(10);

    clock.advance(10_000);
    expect(await call(daemon, daemon.writeLogs, { lines: Array.from({ length: 1000 }, (_, i) => ({ line: `l${i}` })), requestId: randomUUID() }, fleet.token)).toEqual({ acceptedCount: 1000 });
    const stored = await sys.db.query('select count(*)::int as n from log_entries where device_uuid = $1', [fleet.device.uuid]);
    expect(stored.rows[0].n).toBe(2000);
  });
});

describe('8. weak legacy tokens and guessing', () => {
  it('refuses a weak legacy token at import and trims surrounding white space', async () => {
    const fleet = await device();
    for (const weak of ['short', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', '1234567890123456']) {
      const err = await failure(importLegacy(weak, fleet.device.uuid));
      expect([err.code, err.fields], weak).toEqual([status.INVALID_ARGUMENT, ['token']]);
      expect(err.details).toMatch(/too weak/);
    }
    const spaced = `legacy token ${randomUUID()}`;
    await importLegacy(`  ${spaced}\t`, fleet.device.uuid);
    await replica.synced();
    expect((await fetch(`${legacyBase}/daemon/devices`, { headers: { 'X-API-KEY': spaced } })).status).toBe(200);
  });

  it('throttles failed keys per peer address on both surfaces, while a key seen in use still works', async () => {
    const fleet = await device();
    // The daemon's own key is used (and so known) before the guessing starts.
    await checkVersion(daemon, fleet.token, fleet.logicalId);
    const guess = (i: number) => fetch(`${legacyBase}/daemon/devices`, { headers: { 'X-API-KEY': `guess ${i} ${randomUUID()}` } });
    for (let i = 0; i < 5; i++) expect((await guess(i)).status).toBe(401);
    const throttled = await guess(5);
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const grpcGuess = await failure(checkVersion(daemon, generateDaemonToken(), fleet.logicalId));
    expect([grpcGuess.code, grpcGuess.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'AUTH_THROTTLED']);
    expect(grpcGuess.retryDelayMs).toBeGreaterThan(0);
    expect(replica.service.counters.authThrottled).toBeGreaterThanOrEqual(2);
    // The fleet's daemon behind the same address goes on.
    expect((await checkVersion(daemon, fleet.token, fleet.logicalId)).version).toMatch(/^[0-9a-f]{32}$/);

    clock.advance(1_000);
    expect((await guess(6)).status).toBe(401);
    expect((await guess(7)).status).toBe(429);
  });
});

describe('9. and 10. legacy HTTP answers', () => {
  it('answers 412 for a failed precondition on /daemon/db, not a 503 to retry', async () => {
    const fleet = await device();
    const legacy = `legacy token ${randomUUID()}`;
    await importLegacy(legacy, fleet.device.uuid);
    for (const header of [{ 'If-Match': '"nope"' }, { 'If-Unmodified-Since': 'Mon, 01 Jan 2001 00:00:00 GMT' }] as Record<string, string>[]) {
      const res = await fetch(`${legacyBase}/daemon/db?logical_id=${fleet.logicalId}`, { headers: { 'X-API-KEY': legacy, ...header } });
      expect(res.status, JSON.stringify(header)).toBe(412);
      expect(res.headers.get('retry-after')).toBeNull();
    }
  });

  it('answers what the HTTP parser refuses as problem+json, refuses a second Host and echoes no Host', async () => {
    const malformed = await rawHttp('GET /daemon/devices HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n');
    expect(malformed.response).toMatch(/^HTTP\/1.1 400 /);
    expect(malformed.response).toContain('Content-Type: application/problem+json');
    const oversized = await rawHttp(`GET /daemon/devices HTTP/1.1\r\nHost: a\r\nX-Pad: ${'p'.repeat(20_000)}\r\n\r\n`);
    expect(oversized.response).toMatch(/^HTTP\/1.1 431 /);
    expect(oversized.response).toContain('Content-Type: application/problem+json');

    // The original never looked at Content-Type: a body without one is no 415.
    const fleet = await device();
    const legacy = `legacy token ${randomUUID()}`;
    await importLegacy(legacy, fleet.device.uuid);
    const untyped = await rawHttp(`POST /daemon/logs HTTP/1.1\r\nHost: a\r\nX-API-KEY: ${legacy}\r\nContent-Length: 16\r\nConnection: close\r\n\r\n{"message":"hi"}`);
    expect(untyped.response).toMatch(/^HTTP\/1.1 201 /);

    const twoHosts = await rawHttp('GET /daemon/devices HTTP/1.1\r\nHost: replica\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
    expect(twoHosts.response).toMatch(/^HTTP\/1.1 400 /);
    const unknown = await rawHttp('GET /daemon/nowhere HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
    expect(unknown.response).toMatch(/^HTTP\/1.1 404 /);
    expect(unknown.response).not.toContain('evil.example');
  });

  it("files a log line whose own time is far from its receipt under the receipt, so it is found by time", async () => {
    const fleet = await device();
    const marker = `dated-2001-${uniqueInt()}`;
    const before = new Date();
    await call(daemon, daemon.writeLogs, { lines: [{ line: marker, logTime: new Date('2001-01-01T00:00:00Z') }], requestId: randomUUID() }, fleet.token);
    const logs = sys.write.client(LogServiceClient);
    const found = await call(logs, logs.listLogs, ListLogsRequest.fromPartial({ deviceUuid: fleet.device.uuid, contains: marker, startTime: new Date(before.getTime() - 3_600_000) }), sys.write.adminToken);
    expect(found.logEntries.map((e) => e.line)).toEqual([marker]);
    expect(found.logEntries[0]!.logTime!.getTime()).toBe(found.logEntries[0]!.receiveTime!.getTime());
  });
});

/** ImportLegacyDaemonToken with the admin token. */
function importLegacy(token: string, deviceUuid: string) {
  const tokens = sys.write.client(DaemonTokenServiceClient);
  return call(tokens, tokens.importLegacyDaemonToken, ImportLegacyDaemonTokenRequest.fromPartial({ deviceUuid, token }), sys.write.adminToken).then(async (t) => {
    await replica.synced();
    return t;
  });
}
