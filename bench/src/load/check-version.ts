/**
 * CheckVersion load generator, run in its own process (bench/src/lib/peer.ts runCheckVersionLoad):
 * `channels` separate connections (local subchannel pools, so they are not shared), each with
 * concurrency / channels loops that issue the next call as soon as the previous one completes.
 * Tells its parent over IPC when warm-up ends ('measuring') and when the window closes
 * ('measured'), then prints one JSON line: {calls, seconds, rps, p50Ms, p99Ms, errors,
 * generatorCpuSeconds}. Latencies go into a preallocated Float64Array: the generator shares the
 * 2 cores with the server, so its own per-call cost is kept to what grpc-js needs.
 */
import { readFileSync } from 'node:fs';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { DaemonServiceClient, type CheckVersionRequest, type CheckVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import type { LoadConfig, LoadResult } from '../lib/peer.js';
import { percentile } from '../lib/stats.js';

const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
/** Room for 50,000 calls per second of window, well above what 2 cores can drive. */
const latencies = new Float64Array(Math.ceil((config.durationMs / 1000) * 50_000));
let recorded = 0;
let calls = 0;
let errors = 0;
let firstError: string | undefined;
let phase: 'warmup' | 'measuring' | 'done' = 'warmup';

const creds = config.caFile ? credentials.createSsl(readFileSync(config.caFile)) : credentials.createInsecure();
/** The development certificate names localhost too; TLS may not carry an IP address as server name (RFC 6066). */
const SERVER_NAME = config.caFile ? { 'grpc.ssl_target_name_override': 'localhost' } : {};
const clients: InstanceType<typeof DaemonServiceClient>[] = [];
const perChannel = Math.max(1, Math.round(config.concurrency / config.channels));
let inFlight = 0;
let drained: () => void = () => undefined;

for (let c = 0; c < config.channels; c++) {
  const client = new DaemonServiceClient(config.targets[c % config.targets.length]!, creds, { 'grpc.use_local_subchannel_pool': 1, ...SERVER_NAME });
  clients.push(client);
  // One Metadata per channel, reused by every call on it (grpc-js only reads it).
  const metadata = new Metadata();
  const token = config.tokens.length ? config.tokens[c % config.tokens.length]! : undefined;
  if (token !== undefined) metadata.set('x-api-key', token);
  for (let i = 0; i < perChannel; i++) loop(client, metadata);
}

function loop(client: InstanceType<typeof DaemonServiceClient>, metadata: Metadata): void {
  // The request is reused: knownVersion follows the answers, as a polling daemon's would.
  const request: CheckVersionRequest = { logicalId: config.logicalId, knownVersion: '' };
  let started = 0;
  const done = (err: ServiceError | null, res: CheckVersionResponse): void => {
    inFlight--;
    if (phase === 'measuring') {
      calls++;
      if (err) {
        errors++;
        firstError ??= `${err.code} ${err.details}`;
      } else if (recorded < latencies.length) latencies[recorded++] = performance.now() - started;
    }
    if (!err) request.knownVersion = res.version;
    if (phase === 'done') {
      if (inFlight === 0) drained();
      return;
    }
    issue();
  };
  const issue = (): void => {
    inFlight++;
    started = performance.now();
    client.checkVersion(request, metadata, done);
  };
  issue();
}

setTimeout(() => {
  // Warm-up over: count from here.
  phase = 'measuring';
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  process.send?.({ type: 'measuring' });
  setTimeout(() => {
    phase = 'done';
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    process.send?.({ type: 'measured' });
    const sample = latencies.subarray(0, recorded);
    const result: LoadResult = {
      calls,
      seconds,
      rps: calls / seconds,
      p50Ms: percentile(sample, 50),
      p99Ms: percentile(sample, 99),
      errors,
      generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
      ...(firstError ? { firstError } : {}),
    };
    const finish = (): void => {
      for (const client of clients) client.close();
      process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
    };
    drained = finish;
    if (inFlight === 0) finish();
    // Calls that never answer must not hold the report.
    setTimeout(finish, 5_000).unref();
  }, config.durationMs);
}, config.warmupMs);
