import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createLocalJWKSet, jwtVerify } from 'jose';
import Provider from 'oidc-provider';
import { CHECK_VERSION_LOAD } from './check-version.js';
import type { Benchmark, BenchContext } from './lib/context.js';
import { runLoad, type LoadConfig, type LoadResult } from './lib/peer.js';
import { printJson, printTable, type Row } from './lib/report.js';
import { round } from './lib/stats.js';
import { ROOT, type ServiceProcess } from './lib/system.js';
import type { AdminCallsConfig } from './load/admin-calls.js';
import type { NewConnectionsConfig } from './load/new-connections.js';

/** Each configuration is measured this many times, alternating, so drift on a shared machine hits both alike. */
const ROUNDS = 2;
const AUDIENCE = 'https://titanbot-admin.bench';

interface Measured {
  load: LoadResult;
  /** Serving-side CPU µs per call (per connection for new-connection runs). */
  cpuUs: number;
}

/** Runs `measure` for `a` and `b` in turn, ROUNDS times, and sums each side's calls and CPU. */
async function alternate(a: () => Promise<{ load: LoadResult; cpuSeconds: number }>, b: () => Promise<{ load: LoadResult; cpuSeconds: number }>): Promise<[Measured, Measured]> {
  const runs: [Array<{ load: LoadResult; cpuSeconds: number }>, Array<{ load: LoadResult; cpuSeconds: number }>] = [[], []];
  for (let i = 0; i < ROUNDS; i++) {
    runs[0].push(await a());
    runs[1].push(await b());
  }
  return runs.map((side) => {
    const calls = side.reduce((n, r) => n + r.load.calls, 0);
    const cpu = side.reduce((n, r) => n + r.cpuSeconds, 0);
    const errors = side.reduce((n, r) => n + r.load.errors, 0);
    if (errors) process.stderr.write(`secure-edge: ${errors} errors, first: ${side.find((r) => r.load.firstError)?.load.firstError}\n`);
    // Latency percentiles: the last round's (rounds are alike; merging samples would need them all).
    return { load: { ...side.at(-1)!.load, calls, errors, rps: calls / side.reduce((n, r) => n + r.load.seconds, 0) }, cpuUs: (cpu * 1e6) / Math.max(1, calls) };
  }) as [Measured, Measured];
}

/**
 * CPU µs of one jose `jwtVerify` of `token` against the issuer's published keys, in this process:
 * the check the write service makes per admin call, without the call around it.
 */
async function jwtVerifyCpuUs(issuer: string, token: string): Promise<number> {
  const keys = createLocalJWKSet((await (await fetch(`${issuer}/jwks`)).json()) as Parameters<typeof createLocalJWKSet>[0]);
  const verify = () => jwtVerify(token, keys, { issuer, audience: AUDIENCE, algorithms: ['RS256'] });
  for (let i = 0; i < 200; i++) await verify();
  const iterations = 2_000;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) await verify();
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / iterations;
}

/** An OpenID Provider (oidc-provider, as in the tests) issuing admin access tokens by client credentials. */
async function startProvider(): Promise<{ issuer: string; token(): Promise<string>; stop(): Promise<void> }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const provider = new Provider(issuer, {
    clients: [{ client_id: 'bench', client_secret: 'bench-secret', grant_types: ['client_credentials'], redirect_uris: [], response_types: [], scope: 'titanbot.api' }],
    scopes: ['titanbot.api'],
    features: {
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'titanbot.api', audience: AUDIENCE, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
      },
    },
    extraTokenClaims: () => ({ roles: ['admin'] }),
  });
  server.on('request', provider.callback());
  return {
    issuer,
    async token() {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('bench:bench-secret').toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'titanbot.api', resource: AUDIENCE }).toString(),
      });
      if (!res.ok) throw new Error(`token endpoint answered ${res.status}`);
      return ((await res.json()) as { access_token: string }).access_token;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function row(name: string, m: Measured, unit: string, reference?: Measured): Row {
  return {
    configuration: name,
    [unit === 'connection' ? 'connections/s' : 'rps']: Math.round(m.load.rps),
    'p50 ms': round(m.load.p50Ms, 3),
    'p99 ms': round(m.load.p99Ms, 3),
    [`server CPU µs/${unit}`]: round(m.cpuUs, 1),
    ...(reference ? { 'over plaintext µs': round(m.cpuUs - reference.cpuUs, 1) } : {}),
    errors: m.load.errors,
  };
}

/**
 * Benchmark: what the secure edge costs. (1) CheckVersion CPU per call on a read replica serving
 * plaintext and one serving TLS, same load as check-version (kept connections); (2) the cost of a
 * new connection (connect, one CheckVersion, close) in plaintext and with a TLS handshake; (3) an
 * admin call (GetDevice) on the write service with the admin token and with an OAuth 2.0 JWT
 * verified against a real OpenID Provider. Each pair alternates ROUNDS times in this run.
 */
export const secureEdge: Benchmark = {
  name: 'secure-edge',
  async run(ctx: BenchContext) {
    const certs = await mkdtemp(path.join(os.tmpdir(), 'titanbot-bench-certs-'));
    const started: ServiceProcess[] = [];
    const idp = await startProvider();
    try {
      await promisify(execFile)('bash', [path.join(ROOT, 'scripts/dev-ca.sh'), certs]);
      const caFile = path.join(certs, 'ca.pem');
      const plain = await ctx.system.startReplica();
      started.push(plain);
      const tls = await ctx.system.startReplica({ TLS_CERT_FILE: path.join(certs, 'server.pem'), TLS_KEY_FILE: path.join(certs, 'server-key.pem'), HEALTH_CA_FILE: caFile });
      started.push(tls);

      const kept = (target: ServiceProcess, tlsCa?: string) => () => {
        const config: LoadConfig = { ...CHECK_VERSION_LOAD, targets: [target.address], tokens: ctx.fleet.tokens, logicalId: ctx.fleet.logicalId, ...(tlsCa ? { caFile: tlsCa } : {}) };
        return runLoad('bench/dist/load/check-version.js', config, [target.pid], false);
      };
      const [keptPlain, keptTls] = await alternate(kept(plain), kept(tls, caFile));

      const fresh = (target: ServiceProcess, tlsCa?: string) => () => {
        const config: NewConnectionsConfig = { target: target.address, loops: 4, warmupMs: 500, durationMs: 3_000, token: ctx.fleet.tokens[0]!, logicalId: ctx.fleet.logicalId, ...(tlsCa ? { caFile: tlsCa } : {}) };
        return runLoad('bench/dist/load/new-connections.js', config, [target.pid], false);
      };
      const [freshPlain, freshTls] = await alternate(fresh(plain), fresh(tls, caFile));

      const write = await ctx.system.startWriteService({ OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: AUDIENCE });
      started.push(write);
      const jwt = await idp.token();
      const admin = (header: [string, string]) => () => {
        const config: AdminCallsConfig = { target: write.address, concurrency: 8, warmupMs: 1_000, durationMs: 4_000, header, deviceUuid: ctx.fleet.deviceUuid };
        return runLoad('bench/dist/load/admin-calls.js', config, [write.pid], false);
      };
      const [adminToken, bearer] = await alternate(admin(['x-api-key', ctx.system.adminToken]), admin(['authorization', `Bearer ${jwt}`]));
      const verifyAlone = await jwtVerifyCpuUs(idp.issuer, jwt);

      printTable(`secure-edge: CheckVersion, ${CHECK_VERSION_LOAD.concurrency} in flight over ${CHECK_VERSION_LOAD.channels} kept connections, ${ROUNDS} alternating rounds of 5 s`, [
        row('plaintext', keptPlain, 'call'),
        row('TLS', keptTls, 'call', keptPlain),
      ]);
      printTable(`secure-edge: a new connection per CheckVersion (4 loops of connect, call, close), ${ROUNDS} alternating rounds of 3 s`, [
        row('plaintext', freshPlain, 'connection'),
        row('TLS handshake (P-256 certificate)', freshTls, 'connection', freshPlain),
      ]);
      printTable(`secure-edge: GetDevice on the write service, 8 in flight, ${ROUNDS} alternating rounds of 4 s (write process CPU only)`, [
        row('admin token (x-api-key)', adminToken, 'call'),
        row('OAuth 2.0 JWT (RS256, jose)', bearer, 'call', adminToken),
      ]);
      process.stdout.write(`jose jwtVerify alone (RS256, 2,000 in this process): ${round(verifyAlone, 1)} µs CPU each\n`);
      printJson('secure-edge', {
        checkVersionPlainCpuUsPerCall: round(keptPlain.cpuUs, 1),
        checkVersionTlsCpuUsPerCall: round(keptTls.cpuUs, 1),
        checkVersionTlsToPlainCpuRatio: round(keptTls.cpuUs / keptPlain.cpuUs, 2),
        checkVersionPlainRps: Math.round(keptPlain.load.rps),
        checkVersionTlsRps: Math.round(keptTls.load.rps),
        newConnectionPlainCpuUs: round(freshPlain.cpuUs, 1),
        newConnectionTlsCpuUs: round(freshTls.cpuUs, 1),
        tlsHandshakeServerCpuUs: round(freshTls.cpuUs - freshPlain.cpuUs, 1),
        newConnectionPlainP50Ms: round(freshPlain.load.p50Ms, 3),
        newConnectionTlsP50Ms: round(freshTls.load.p50Ms, 3),
        tlsHandshakeP50Ms: round(freshTls.load.p50Ms - freshPlain.load.p50Ms, 3),
        adminTokenCpuUsPerCall: round(adminToken.cpuUs, 1),
        jwtCpuUsPerCall: round(bearer.cpuUs, 1),
        jwtCheckCpuUs: round(bearer.cpuUs - adminToken.cpuUs, 1),
        jwtVerifyAloneCpuUs: round(verifyAlone, 1),
        adminTokenP50Ms: round(adminToken.load.p50Ms, 3),
        jwtP50Ms: round(bearer.load.p50Ms, 3),
        errors: [keptPlain, keptTls, freshPlain, freshTls, adminToken, bearer].reduce((n, m) => n + m.load.errors, 0),
      });
    } finally {
      for (const p of started.reverse()) await p.stop();
      await idp.stop();
      await rm(certs, { recursive: true, force: true });
    }
  },
};
