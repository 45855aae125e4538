import { status, type ServiceError } from '@grpc/grpc-js';
import { RetryInfo } from '@titanbot/contracts/google/rpc/error_details';
import { Status } from '@titanbot/contracts/google/rpc/status';
import { WatchVersionRequest, type DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { generateDaemonToken, SHOWN_PREFIX_CHARS } from '@titanbot/service-kit/daemon-token';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { failure, withKey } from '@titanbot/write/test-support/harness';
import { TestClock } from '@titanbot/write/test-support/test-clock';
import { adminApi, provisionDevice } from './support/admin.js';
import { checkVersion, download } from './support/daemon.js';
import { logLines, watch } from './support/more.js';
import { startSystem, type Replica, type System } from './support/system.js';

const CHECK_VERSION = '/titanbot.daemon.v1.DaemonService/CheckVersion';
const WATCH_VERSION = '/titanbot.daemon.v1.DaemonService/WatchVersion';

let sys: System;
/** The replica's clock: refills, throttle seconds and expiry happen when a test moves it. */
const clock = new TestClock();
let replica: Replica;
let daemon: DaemonServiceClient;
let api: ReturnType<typeof adminApi>;

beforeAll(async () => {
  sys = await startSystem();
  api = adminApi(sys.write);
  // Floods of bad keys from one address are counted here; their throttle is test/hostile-daemon.test.ts's.
  replica = await sys.startReplica({ DAEMON_RPS: '5', DAEMON_BURST: '10', AUTH_FAILURES_BURST: '1000000' }, undefined, clock);
  await replica.service.consumer.caughtUp;
  daemon = replica.daemon();
});
afterAll(async () => {
  await sys?.stop();
});

/** A device with a bound account and a daemon token, already on the replica. */
async function device() {
  const provisioned = await provisionDevice(api);
  await replica.synced();
  return provisioned;
}

/** The RetryInfo delay of a failed call in ms, or undefined when it carries none. */
function retryDelayMs(err: ServiceError): number | undefined {
  const bin = err.metadata.get('grpc-status-details-bin')[0];
  if (!(bin instanceof Buffer)) return undefined;
  const any = Status.decode(bin).details.find((d) => d.typeUrl === 'type.googleapis.com/google.rpc.RetryInfo');
  if (!any) return undefined;
  const delay = RetryInfo.decode(any.value).retryDelay;
  return delay ? delay.seconds * 1000 + delay.nanos / 1e6 : undefined;
}

/** `n` CheckVersion calls at once with `token`; all must succeed. */
const checks = (token: string, logicalId: number, n: number): Promise<unknown> =>
  Promise.all(Array.from({ length: n }, () => checkVersion(daemon, token, logicalId)));

describe('per-device rate limit (DAEMON_RPS=5, DAEMON_BURST=10)', () => {
  it('grants the burst, refuses the next call with RATE_LIMITED and a RetryInfo delay, and only for that token', async () => {
    const [fleet, other] = await Promise.all([device(), device()]);
    // The replica's monotonic clock stands still between advances: no refill happens meanwhile.
    await checks(fleet.token, fleet.logicalId, 10);
    const refused = await failure(checkVersion(daemon, fleet.token, fleet.logicalId));
    expect([refused.code, refused.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'RATE_LIMITED']);
    const delay = retryDelayMs(refused);
    expect(delay).toBeGreaterThan(0);
    expect(delay).toBeLessThanOrEqual(200);

    // Another device's token has its own budget.
    await checks(other.token, other.logicalId, 10);

    clock.advance(delay!);
    expect((await checkVersion(daemon, fleet.token, fleet.logicalId)).version).toMatch(/^[0-9a-f]{32}$/);
    expect(replica.service.counters.rateLimited).toBe(1);
    const lines = logLines(replica.logs, 'daemon token rate limited');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, method: CHECK_VERSION, token: fleet.tokenUuid, suppressed: 0 });
  });

  it('charges one call for opening a WatchVersion or DownloadExport stream, and refuses opening one when spent', async () => {
    const fleet = await device();
    // Warm the export with a second token of the device: the timed download is then quick. The
    // device's budget is shared by its tokens, so this costs one of the ten.
    const warmer = await api.issueToken(fleet.device.uuid);
    await replica.synced();
    await download(daemon, warmer.token, { logicalId: fleet.logicalId });

    const watching = watch(daemon, fleet.token, fleet.logicalId, '');
    await watching.next(1);
    await download(daemon, fleet.token, { logicalId: fleet.logicalId });
    await checks(fleet.token, fleet.logicalId, 7);
    const refused = await failure(checkVersion(daemon, fleet.token, fleet.logicalId));
    expect([refused.code, refused.reason]).toEqual([status.RESOURCE_EXHAUSTED, 'RATE_LIMITED']);

    const refusedWatch = await watch(daemon, fleet.token, fleet.logicalId, '').error;
    const refusedDownload = await failure(download(daemon, fleet.token, { logicalId: fleet.logicalId }));
    for (const err of [refusedWatch!, refusedDownload]) {
      expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(retryDelayMs(err)).toBeGreaterThan(0);
    }
    watching.cancel();
  });
});

describe('failed authentications', () => {
  it('counts every failure by reason and logs it without the presented value', async () => {
    const fleet = await device();
    const expiring = await api.issueToken(fleet.device.uuid, 1);
    const revoked = await api.issueToken(fleet.device.uuid);
    await api.revokeToken(revoked.daemonToken!.uuid);
    await replica.synced();
    clock.advance(1_500); // past the 1 s token's expiry (and the throttle's second)

    const good = generateDaemonToken();
    const malformed = `${good.slice(0, -1)}${good.endsWith('x') ? 'y' : 'x'}`;
    const unknown = generateDaemonToken();
    const presented: [string, string | undefined][] = [
      ['missing', undefined],
      ['missing', ''],
      ['malformed', malformed],
      ['malformed', 'not-a-token'],
      ['unknown', unknown],
      ['expired', expiring.token],
      ['revoked', revoked.token],
    ];
    const before = structuredClone(replica.service.counters.authFailures);
    for (const [reason, key] of presented) {
      const err = await failure(checkVersion(daemon, key as string, fleet.logicalId));
      expect([err.code, err.reason], reason).toEqual([status.UNAUTHENTICATED, 'UNAUTHENTICATED']);
    }
    const after = replica.service.counters.authFailures;
    expect({
      missing: after.missing - before.missing,
      malformed: after.malformed - before.malformed,
      unknown: after.unknown - before.unknown,
      expired: after.expired - before.expired,
      revoked: after.revoked - before.revoked,
    }).toEqual({ missing: 2, malformed: 2, unknown: 1, expired: 1, revoked: 1 });

    // One warn line per reason (the second missing / malformed fell within the same second).
    const lines = logLines(replica.logs, 'daemon authentication failed');
    const byReason = Object.fromEntries(lines.map((l) => [l['reason'], l]));
    expect(lines).toHaveLength(5);
    expect(byReason['missing']).toMatchObject({ level: 40, method: CHECK_VERSION });
    expect(byReason['missing']).not.toHaveProperty('tokenPrefix');
    expect(byReason['malformed']).not.toHaveProperty('tokenPrefix');
    expect(byReason['unknown']).toMatchObject({ level: 40, method: CHECK_VERSION, tokenPrefix: unknown.slice(0, SHOWN_PREFIX_CHARS) });
    expect(byReason['expired']).toMatchObject({ tokenPrefix: expiring.token.slice(0, SHOWN_PREFIX_CHARS) });
    expect(byReason['revoked']).toMatchObject({ tokenPrefix: revoked.token.slice(0, SHOWN_PREFIX_CHARS) });
    const allLogs = replica.logs.join('');
    for (const [, key] of presented) if (key) expect(allLogs).not.toContain(key);
  });

  it('throttles the warn lines of a flood to one per reason per second but counts every failure', async () => {
    const fleet = await device();
    clock.advance(1_100); // a new throttle second for every reason
    const before = replica.service.counters.authFailures.unknown;
    const linesBefore = logLines(replica.logs, 'daemon authentication failed').filter((l) => l['reason'] === 'unknown').length;
    await Promise.all(Array.from({ length: 30 }, () => failure(checkVersion(daemon, generateDaemonToken(), fleet.logicalId))));
    expect(replica.service.counters.authFailures.unknown - before).toBe(30);
    expect(logLines(replica.logs, 'daemon authentication failed').filter((l) => l['reason'] === 'unknown')).toHaveLength(linesBefore + 1);

    clock.advance(1_100);
    await failure(checkVersion(daemon, generateDaemonToken(), fleet.logicalId));
    const last = logLines(replica.logs, 'daemon authentication failed').filter((l) => l['reason'] === 'unknown').at(-1);
    expect(last).toMatchObject({ suppressed: 29 });
  });
});

describe('client deadlines', () => {
  it('ends a WatchVersion stream server-side when its deadline passes', async () => {
    const fleet = await device();
    const endedWatches = (): number => logLines(replica.logs, 'rpc').filter((l) => l['method'] === WATCH_VERSION && l['code'] === 'CANCELLED').length;
    const before = endedWatches();
    const stream = daemon.watchVersion(WatchVersionRequest.fromPartial({ logicalId: fleet.logicalId }), withKey(fleet.token), { deadline: new Date(Date.now() + 300) });
    const ended = new Promise<ServiceError>((resolve) => stream.on('error', resolve));
    stream.on('data', () => {});
    expect((await ended).code).toBe(status.DEADLINE_EXCEEDED);
    // The handler saw the cancellation: its stream ended (and logged as CANCELLED).
    await vi.waitFor(() => expect(endedWatches()).toBe(before + 1));
  });
});
