/**
 * Console-call load generator, run in its own process (bench/src/lib/peer.ts runLoad):
 * `concurrency` loops, each posting DeviceService.GetDevice for one device to the console over the
 * Connect protocol (JSON, as the browser does) with the session cookie and the console's origin,
 * as soon as the previous answer arrives. Node's fetch keeps its connections alive.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { Recorder } from './recorder.js';

/** What console-calls.ts is told (one JSON argument). */
export interface ConsoleCallsConfig {
  /** The console's origin, e.g. http://127.0.0.1:8080. */
  origin: string;
  /** `name=value` of the session cookie. */
  cookie: string;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  deviceUuid: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ConsoleCallsConfig;
const recorder = new Recorder(config.warmupMs, config.durationMs);
const body = JSON.stringify({ uuid: config.deviceUuid });
const headers = { 'content-type': 'application/json', 'connect-protocol-version': '1', origin: config.origin, cookie: config.cookie };

recorder.loop(config.concurrency, (next) => {
  const started = performance.now();
  fetch(`${config.origin}/titanbot.admin.v1.DeviceService/GetDevice`, { method: 'POST', headers, body })
    .then(async (res) => {
      const text = await res.text();
      return res.status === 200 ? null : (new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`) as ServiceError);
    })
    .catch((err: Error) => err as ServiceError)
    .then((err) => {
      recorder.record(err, started);
      next();
    });
});
