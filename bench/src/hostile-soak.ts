import { randomUUID } from 'node:crypto';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { CreateDeviceRequest, GetDeviceRequest } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { CreateLegionRequest } from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import { ListLogsRequest } from '@titanbot/contracts/titanbot/admin/v1/log_service';
import type { Benchmark } from './lib/context.js';
import { rssBytes } from './lib/proc.js';
import { printJson, printTable } from './lib/report.js';
import { round } from './lib/stats.js';

/** Hostile calls sent in all (SOAK_CALLS for a longer run). */
const CALLS = Number(process.env.SOAK_CALLS ?? 100_000);
/** Calls in flight at once. */
const CONCURRENCY = 32;
/** RSS is sampled after every this many calls. */
const SAMPLE_EVERY = Math.max(5_000, Math.round(CALLS / 20));

const bytes = (message: { finish(): Uint8Array }): Buffer => Buffer.from(message.finish());

/**
 * The hostile calls of the fault-injection run, as request bytes, with the share of each in the
 * mix (weights). `IssueDaemonToken` carries ttl.seconds = 2^63 - 1, which no number-typed encoder
 * can write: field 2 (ttl) holding field 1 (seconds) as the varint ff..ff 7f.
 */
const HOSTILE: { method: string; weight: number; request: () => Buffer }[] = [
  {
    method: '/titanbot.admin.v1.DeviceService/CreateDevice',
    weight: 1,
    request: () => bytes(CreateDeviceRequest.encode(CreateDeviceRequest.fromPartial({ device: { physicalId: 1 }, requestId: 'x'.repeat(1024 * 1024) }))),
  },
  {
    method: '/titanbot.admin.v1.DeviceService/CreateDevice',
    weight: 10,
    request: () => bytes(CreateDeviceRequest.encode(CreateDeviceRequest.fromPartial({ device: { physicalId: 1 }, requestId: `nul\0${randomUUID()}` }))),
  },
  {
    method: '/titanbot.admin.v1.LogService/ListLogs',
    weight: 10,
    request: () => bytes(ListLogsRequest.encode(ListLogsRequest.fromPartial({ startTime: new Date(253402300800000), contains: 'c\u0001'.repeat(100) }))),
  },
  {
    method: '/titanbot.admin.v1.DaemonTokenService/IssueDaemonToken',
    weight: 10,
    request: () => Buffer.from('120a08ffffffffffffffff7f', 'hex'),
  },
  {
    method: '/titanbot.admin.v1.LegionService/CreateLegion',
    weight: 10,
    request: () => bytes(CreateLegionRequest.encode(CreateLegionRequest.fromPartial({ legion: { title: 't'.repeat(20_000), extTitle: '\0' }, requestId: randomUUID() }))),
  },
  { method: '/titanbot.admin.v1.DeviceService/GetDevice', weight: 10, request: () => Buffer.from(randomUUID().replace(/-/g, ''), 'hex') },
  { method: '/titanbot.admin.v1.DeviceService/GetDevice', weight: 10, request: () => bytes(GetDeviceRequest.encode({ uuid: randomUUID() })) },
];

const identity = (b: Buffer): Buffer => b;

/**
 * Benchmark: does the write service's memory level off under hostile input? Sends CALLS hostile
 * admin calls (1 MiB request_ids, NUL and control bytes, Timestamps past year 9999, int64 beyond
 * 2^53, undecodable bytes, unknown uuids), CONCURRENCY at a time, and samples the write process's
 * RSS every SAMPLE_EVERY calls. Reports the codes answered (never INTERNAL) and the RSS growth
 * over the second half, which is the plateau figure.
 */
export const hostileSoak: Benchmark = {
  name: 'hostile-soak',
  async run(ctx) {
    const client = new Client(ctx.system.write.address, credentials.createInsecure(), { 'grpc.max_send_message_length': 8 * 1024 * 1024 });
    const metadata = new Metadata();
    metadata.set('x-api-key', ctx.system.adminToken);
    const mix = HOSTILE.flatMap((h) => Array.from({ length: h.weight }, () => h));
    const codes = new Map<number, number>();
    const send = (n: number): Promise<void> => {
      const h = mix[n % mix.length]!;
      return new Promise((resolve) =>
        client.makeUnaryRequest(h.method, identity, identity, h.request(), metadata, { deadline: Date.now() + 30_000 }, (err: ServiceError | null) => {
          codes.set(err?.code ?? 0, (codes.get(err?.code ?? 0) ?? 0) + 1);
          resolve();
        }),
      );
    };
    const samples: { calls: number; rssMiB: number; elapsedS: number }[] = [];
    const started = performance.now();
    const sample = async (calls: number): Promise<void> => {
      samples.push({ calls, rssMiB: round((await rssBytes(ctx.system.write.pid)) / 2 ** 20, 1), elapsedS: round((performance.now() - started) / 1000, 1) });
    };
    await sample(0);
    let next = 0;
    let done = 0;
    const worker = async (): Promise<void> => {
      while (next < CALLS) {
        await send(next++);
        if (++done % SAMPLE_EVERY === 0) await sample(done);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    client.close();

    const half = samples.find((s) => s.calls >= CALLS / 2)!;
    const last = samples[samples.length - 1]!;
    const peak = Math.max(...samples.map((s) => s.rssMiB));
    printTable(`Write service RSS under ${CALLS} hostile calls (${CONCURRENCY} in flight)`, samples.map((s) => ({ calls: s.calls, 'RSS MiB': s.rssMiB, 's': s.elapsedS })));
    const answered = Object.fromEntries([...codes].map(([code, n]) => [code, n]));
    printJson('hostile-soak', {
      calls: CALLS,
      callsPerSecond: round(CALLS / ((performance.now() - started) / 1000), 0),
      codes: answered,
      rssStartMiB: samples[0]!.rssMiB,
      rssHalfwayMiB: half.rssMiB,
      rssEndMiB: last.rssMiB,
      rssPeakMiB: peak,
      secondHalfGrowthMiB: round(last.rssMiB - half.rssMiB, 1),
    });
  },
};
