/**
 * Admin-call load generator, run in its own process (bench/src/lib/peer.ts runLoad): `concurrency`
 * loops over one channel, each issuing DeviceService.GetDevice for one device as soon as the
 * previous answer arrives, with the credential header given (`x-api-key` admin token or
 * `authorization: Bearer <JWT>`).
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { DeviceServiceClient } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { Recorder } from './recorder.js';

/** What admin-calls.ts is told (one JSON argument). */
export interface AdminCallsConfig {
  target: string;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** The credential: one metadata entry, e.g. ['authorization', 'Bearer ey…']. */
  header: [string, string];
  deviceUuid: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as AdminCallsConfig;
const client = new DeviceServiceClient(config.target, credentials.createInsecure());
const metadata = new Metadata();
metadata.set(config.header[0], config.header[1]);
const recorder = new Recorder(config.warmupMs, config.durationMs);

recorder.loop(config.concurrency, (next) => {
  const started = performance.now();
  client.getDevice({ uuid: config.deviceUuid }, metadata, (err) => {
    recorder.record(err, started);
    next();
  });
});
