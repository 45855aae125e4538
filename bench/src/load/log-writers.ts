/**
 * WriteLogs load generator, run in its own process (bench/src/fleet-logs.ts): `daemons` daemons,
 * each with its own token, spread over 16 connections, each sending a batch of `lines` lines every
 * `intervalMs` (a daemon flushing its log buffer on a timer; a batch not yet acknowledged delays
 * the next), or with `intervalMs` 0 as soon as the previous one is acknowledged (a closed loop:
 * the most the system takes). After `warmupMs` it tells its parent 'measuring'; after `durationMs` more it sends
 * {type: 'result', calls, lines, seconds, p50Ms, p99Ms, errors, firstError} and exits.
 */
import { randomUUID } from 'node:crypto';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { percentile } from '../lib/stats.js';

interface Config {
  target: string;
  tokens: string[];
  daemons: number;
  lines: number;
  warmupMs: number;
  durationMs: number;
  /** Between the starts of one daemon's batches (ms); 0 = closed loop. */
  intervalMs: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const CHANNELS = 16;
const clients = Array.from({ length: CHANNELS }, () => new DaemonServiceClient(config.target, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
let phase: 'warmup' | 'measuring' | 'done' = 'warmup';
let calls = 0;
let errors = 0;
let firstError: string | undefined;
const latencies: number[] = [];
/** A line as long as a typical daemon log line (about 90 bytes). */
const text = (d: number, n: number): string => `daemon ${d} step ${n}: clicked habit at (412, 873), colour matched within deviation 3, next in 1500 ms`;

function daemon(d: number): void {
  const client = clients[d % CHANNELS]!;
  const metadata = new Metadata();
  metadata.set('x-api-key', config.tokens[d % config.tokens.length]!);
  let n = 0;
  const send = (): void => {
    if (phase === 'done') return;
    const started = performance.now();
    const next = (): void => {
      const wait = config.intervalMs - (performance.now() - started);
      if (wait > 0) setTimeout(send, wait);
      else send();
    };
    const lines = Array.from({ length: config.lines }, () => ({ line: text(d, n++), logTime: new Date() }));
    client.writeLogs({ lines, requestId: randomUUID() }, metadata, { deadline: Date.now() + 30_000 }, (err: ServiceError | null) => {
      if (phase === 'measuring') {
        calls++;
        if (err) {
          errors++;
          firstError ??= `${err.code} ${err.details}`;
        } else latencies.push(performance.now() - started);
      }
      next();
    });
  };
  // Paced daemons start spread over one interval, as a fleet's timers would be.
  setTimeout(send, config.intervalMs * Math.random());
}

for (let d = 0; d < config.daemons; d++) daemon(d);
setTimeout(() => {
  phase = 'measuring';
  process.send?.({ type: 'measuring' });
  const started = performance.now();
  setTimeout(() => {
    phase = 'done';
    const seconds = (performance.now() - started) / 1000;
    process.send?.({ type: 'result', calls, lines: (calls - errors) * config.lines, seconds, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), errors, firstError }, () => {
      for (const c of clients) c.close();
      process.exit(0);
    });
  }, config.durationMs);
}, config.warmupMs);
