import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import { startDevProvider } from '@titanbot/console/dev-provider';
import { buildWeb } from '@titanbot/console/web-build';
import { ChangeFeedServiceClient } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { freePort } from '@titanbot/service-kit/free-port';
import { unaryCall } from '@titanbot/service-kit/grpc-client';
import pg from 'pg';
import type { Benchmark, BenchContext } from './lib/context.js';
import { runLoad, type LoadResult } from './lib/peer.js';
import { printJson, printTable } from './lib/report.js';
import { percentile, round } from './lib/stats.js';
import { startNode, type ServiceProcess } from './lib/system.js';
import type { AdminCallsConfig } from './load/admin-calls.js';
import type { ConsoleCallsConfig } from './load/console-calls.js';

const AUDIENCE = 'urn:titanbot:admin';
const SECRET = 'bench-console-secret';
const PASSWORD = 'bench-operator-password';
/** Each path is measured this many times, alternating, so drift on a shared machine hits both alike. */
const ROUNDS = 5;
/** Devices whose statuses the fleet page reads. */
const DEVICES = 10_000;
/** The fleet page's table size (services/console/web/fleet.tsx). */
const PAGE_SIZE = 50;
/** Times the fleet page's data calls are made, after one cold call. */
const PAGE_LOADS = 30;

/**
 * Signs in at the console as a browser would, without one: follows the redirects to the
 * development provider, posts its sign-in form, and follows the redirects back. Returns the
 * session cookie (`name=value`).
 */
async function signIn(origin: string, login: string, password: string): Promise<string> {
  const jar = new Map<string, string>();
  let url = `${origin}/auth/login?return_to=%2F`;
  let form: URLSearchParams | undefined;
  for (let step = 0; step < 12; step++) {
    const res = await fetch(url, {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: form?.toString(),
    });
    form = undefined;
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';')[0]!;
      jar.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
    }
    const session = jar.get('__Host-titanbot-session');
    if (session && new URL(url).origin === origin) return `__Host-titanbot-session=${session}`;
    const location = res.headers.get('location');
    if (location) {
      url = new URL(location, url).href;
      continue;
    }
    const action = /<form method="post" action="([^"]+)"/.exec(await res.text())?.[1];
    if (!action) throw new Error(`sign-in stopped at ${url} (${res.status})`);
    url = new URL(action, url).href;
    form = new URLSearchParams({ login, password });
  }
  throw new Error('sign-in did not finish');
}

/** 10,000 devices with a status each, as replicas report them (the fleet page's worst case for paging). */
async function reportDevices(ctx: BenchContext): Promise<void> {
  const db = new pg.Client({ connectionString: ctx.system.databaseUrl });
  await db.connect();
  const uuids: string[] = (await db.query(`insert into devices (uuid, physical_id) select gen_random_uuid(), 900000000 + g from generate_series(1, $1) g returning uuid`, [DEVICES])).rows.map(
    (r: { uuid: string }) => r.uuid,
  );
  await db.end();
  const feed = new ChangeFeedServiceClient(ctx.system.write.address, credentials.createInsecure(), { 'grpc.max_send_message_length': 16 * 1024 * 1024 });
  const md = new Metadata();
  md.set('x-api-key', ctx.system.readerToken);
  const now = new Date();
  const statuses = uuids.map((deviceUuid, i) => ({ deviceUuid, logicalId: 1, heldVersion: i % 10 ? 'v2' : 'v1', heldSha256: 'ab'.repeat(32), failure: 0, failureMessage: '', lastContactTime: now }));
  await unaryCall(feed, feed.reportDeviceStatuses, { replica: 'bench', statuses, scopeVersions: [{ logicalId: 1, version: 'v2', since: now }] }, md, { deadline: Date.now() + 60_000 });
  feed.close();
}

/** One Connect call to the console (JSON), timed (ms). */
async function consoleCall(origin: string, cookie: string, method: string, body: unknown): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${origin}/titanbot.admin.v1.${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'connect-protocol-version': '1', origin, cookie },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${method}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return performance.now() - started;
}

/**
 * Benchmark: what the operator console costs and weighs. (1) One admin call (GetDevice, one at a
 * time) straight to the write service with a bearer token, and the same call through the console
 * (Connect JSON from a session, forwarded over gRPC with the operator's token): the latency the
 * console adds (target: at most 1 ms at p50 on loopback) and its CPU per call; ROUNDS alternating
 * rounds. (2) The fleet page's data calls (GetFleetSummary and the first page of
 * ListDeviceStatuses, together, as the page makes them) through the console with 10,000 devices
 * reported (target: under 200 ms). (3) The frontend's JavaScript and CSS, gzip (target: at most
 * 300 KB).
 */
export const consoleBench: Benchmark = {
  name: 'console',
  async run(ctx) {
    const origin = `http://127.0.0.1:${await freePort()}`;
    const idp = await startDevProvider({
      issuer: 'http://127.0.0.1:0',
      audience: AUDIENCE,
      rolesClaim: 'roles',
      people: { bench: { password: PASSWORD, roles: ['admin'] } },
      clients: [{ clientId: 'titanbot-console', clientSecret: SECRET, redirectUri: `${origin}/auth/callback`, postLogoutRedirectUri: `${origin}/auth/signed-out` }],
      machines: { bench: { secret: SECRET, roles: ['admin'] } },
    });
    const started: ServiceProcess[] = [];
    const webDir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-bench-web-'));
    try {
      const write = await ctx.system.startWriteService({ OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: AUDIENCE });
      started.push(write);
      const consoleProcess = startNode('services/console/dist/main.js', {
        CONSOLE_HTTP_ADDR: new URL(origin).host,
        WRITE_SERVICE_URL: write.address,
        OIDC_ISSUER: idp.issuer,
        OIDC_AUDIENCE: AUDIENCE,
        CONSOLE_OIDC_CLIENT_SECRET: SECRET,
        LOG_LEVEL: 'warn',
      });
      started.push({ address: origin, pid: consoleProcess.pid!, child: consoleProcess, stop: async () => void (consoleProcess.kill('SIGTERM'), await new Promise((r) => consoleProcess.once('exit', r))) });
      for (let i = 0; !(await fetch(`${origin}/healthz`).then((r) => r.ok, () => false)); i++) {
        if (i > 300) throw new Error('the console did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
      const cookie = await signIn(origin, 'bench', PASSWORD);
      const tokenRes = await fetch(`${idp.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`bench:${SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'titanbot.api', resource: AUDIENCE }).toString(),
      });
      const jwt = ((await tokenRes.json()) as { access_token: string }).access_token;

      // (1) The same call, direct and through the console, one at a time, alternating.
      const window = { concurrency: 1, warmupMs: 1_000, durationMs: 4_000, deviceUuid: ctx.fleet.deviceUuid };
      const direct: { load: LoadResult; cpuSeconds: number }[] = [];
      const forwarded: { load: LoadResult; cpuSeconds: number }[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        direct.push(await runLoad('bench/dist/load/admin-calls.js', { ...window, target: write.address, header: ['authorization', `Bearer ${jwt}`] } satisfies AdminCallsConfig, [write.pid], false));
        forwarded.push(await runLoad('bench/dist/load/console-calls.js', { ...window, origin, cookie } satisfies ConsoleCallsConfig, [consoleProcess.pid!], false));
      }
      const median = (xs: number[]) => percentile(Float64Array.from(xs), 50);
      const side = (runs: typeof direct) => ({
        p50Ms: round(median(runs.map((r) => r.load.p50Ms)), 3),
        p99Ms: round(median(runs.map((r) => r.load.p99Ms)), 3),
        rps: Math.round(median(runs.map((r) => r.load.rps))),
        cpuUsPerCall: round((runs.reduce((n, r) => n + r.cpuSeconds, 0) * 1e6) / Math.max(1, runs.reduce((n, r) => n + r.load.calls, 0)), 1),
        clientCpuUsPerCall: round((runs.reduce((n, r) => n + r.load.generatorCpuSeconds, 0) * 1e6) / Math.max(1, runs.reduce((n, r) => n + r.load.calls, 0)), 1),
        errors: runs.reduce((n, r) => n + r.load.errors, 0),
      });
      const d = side(direct);
      const f = side(forwarded);
      for (const r of [...direct, ...forwarded]) if (r.load.firstError) process.stderr.write(`console: ${r.load.firstError}\n`);

      // (2) The fleet page's data with 10,000 devices reported.
      await reportDevices(ctx);
      const pageData = () =>
        Promise.all([consoleCall(origin, cookie, 'FleetService/GetFleetSummary', {}), consoleCall(origin, cookie, 'FleetService/ListDeviceStatuses', { pageSize: PAGE_SIZE })]).then((t) => Math.max(...t));
      const cold = await pageData();
      const warm: number[] = [];
      for (let i = 0; i < PAGE_LOADS; i++) warm.push(await pageData());

      // (3) The frontend as `npm run build` makes it.
      const files = await buildWeb(webDir);
      const gzip = files.reduce((n, file) => n + file.gzipBytes, 0);

      printTable(`console (1): DeviceService.GetDevice one call at a time, direct (bearer JWT) and through the console (Connect JSON from a session), ${ROUNDS} alternating rounds of 4 s; medians of the rounds`, [
        { path: 'direct to the write service (grpc-js client)', 'p50 ms': d.p50Ms, 'p99 ms': d.p99Ms, 'calls/s': d.rps, 'server CPU µs/call': `${d.cpuUsPerCall} (write)`, 'client CPU µs/call': d.clientCpuUsPerCall, errors: d.errors },
        { path: 'through the console (fetch client)', 'p50 ms': f.p50Ms, 'p99 ms': f.p99Ms, 'calls/s': f.rps, 'server CPU µs/call': `${f.cpuUsPerCall} (console)`, 'client CPU µs/call': f.clientCpuUsPerCall, errors: f.errors },
        { path: 'added by the console (target ≤ 1 ms p50)', 'p50 ms': round(f.p50Ms - d.p50Ms, 3), 'p99 ms': round(f.p99Ms - d.p99Ms, 3), 'calls/s': '', 'server CPU µs/call': '', 'client CPU µs/call': '', errors: '' },
      ]);
      printTable(`console (2): the fleet page's data calls through the console (summary and first ${PAGE_SIZE} devices, together) with ${DEVICES} devices reported`, [
        { call: 'first (cold)', ms: round(cold, 1) },
        { call: `p50 of ${PAGE_LOADS}`, ms: round(median(warm), 1) },
        { call: `max of ${PAGE_LOADS} (target < 200 ms)`, ms: round(Math.max(...warm), 1) },
      ]);
      printTable('console (3): the frontend (target ≤ 300 KB gzip)', [...files.map((file) => ({ file: file.path, bytes: file.bytes, 'gzip bytes': file.gzipBytes })), { file: 'total', bytes: files.reduce((n, x) => n + x.bytes, 0), 'gzip bytes': gzip }]);
      printJson('console', {
        direct: d,
        throughConsole: f,
        addedP50Ms: round(f.p50Ms - d.p50Ms, 3),
        fleetPage: { devices: DEVICES, coldMs: round(cold, 1), p50Ms: round(median(warm), 1), maxMs: round(Math.max(...warm), 1) },
        frontend: { files, gzipBytes: gzip },
      });
    } finally {
      for (const s of started.reverse()) await s.stop();
      await idp.stop();
      await rm(webDir, { recursive: true, force: true });
    }
  },
};
