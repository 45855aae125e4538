import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { credentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { Status } from '@titanbot/contracts/google/rpc/status';
import { BadRequest, ErrorInfo, RetryInfo } from '@titanbot/contracts/google/rpc/error_details';
import { pino } from 'pino';
import { inject } from 'vitest';
import { loadWriteConfig } from '../../src/config.js';
import { startWriteService, type WriteService } from '../../src/main.js';
import { apiKeyMetadata, unaryCall, type UnaryMethod } from '@titanbot/service-kit/grpc-client';
import type { TestClock } from './test-clock.js';

export interface Harness {
  service: WriteService;
  address: string;
  adminToken: string;
  readerToken: string;
  dataDir: string;
  /** Every log line the service wrote, as text. */
  logs: string[];
  /** A client of `Ctor` connected to the service. */
  client<C extends Client>(Ctor: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => C): C;
  stop(): Promise<void>;
}

/**
 * Starts the real write service on 127.0.0.1:0 against the test database, file secret store. `env`
 * overrides the defaults; with `DATA_DIR` (e.g. one secrets directory shared by two replicas) the caller
 * owns that directory, otherwise a temporary one is made and removed by stop(). `ADMIN_TOKEN` and
 * `READER_TOKEN` from `env` are reported as `adminToken` / `readerToken`. The service reads `clock` (default: the system's).
 */
export async function startHarness(env: Record<string, string> = {}, clock?: TestClock): Promise<Harness> {
  const ownDataDir = env.DATA_DIR === undefined;
  const dataDir = env.DATA_DIR ?? (await mkdtemp(path.join(os.tmpdir(), 'titanbot-write-')));
  await shareRunDataKey(path.join(dataDir, 'secrets'));
  // Prefixed as the service's own are: a bare base64url token may begin with '-', which titanctl's
  // command line would take for a flag (a test failed so once in 64 runs).
  const adminToken = env.ADMIN_TOKEN ?? `tba_${randomBytes(24).toString('base64url')}`;
  const readerToken = env.READER_TOKEN ?? `tbr_${randomBytes(24).toString('base64url')}`;
  const config = loadWriteConfig({
    DATABASE_URL: inject('databaseUrl'),
    DATA_DIR: dataDir,
    WRITE_GRPC_ADDR: '127.0.0.1:0',
    ADMIN_TOKEN: adminToken,
    READER_TOKEN: readerToken,
    FEED_PROGRESS_INTERVAL: '200ms',
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const service = await startWriteService(config, pino({ level: 'debug' }, sink), clock?.date);
  const clients: Client[] = [];
  return {
    service,
    address: service.address,
    adminToken,
    readerToken,
    dataDir,
    logs,
    client(Ctor) {
      const c = new Ctor(service.address, credentials.createInsecure());
      clients.push(c);
      return c;
    },
    async stop() {
      // DUMP_LOGS=1 prints the service's error lines (causes of INTERNAL answers) when debugging.
      if (process.env.DUMP_LOGS) process.stderr.write(logs.filter((l) => l.includes('"level":50')).join(''));
      for (const c of clients) c.close();
      await service.stop();
      if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Seeds `secretsDir` with the run's data key (global-setup.ts) unless it already has one. */
async function shareRunDataKey(secretsDir: string): Promise<void> {
  await mkdir(secretsDir, { recursive: true, mode: 0o700 });
  await copyFile(path.join(inject('dataKeyDir'), 'data-key.json'), path.join(secretsDir, 'data-key.json'), constants.COPYFILE_EXCL).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
}

/** Metadata carrying `x-api-key` (none when `key` is undefined). */
export const withKey = apiKeyMetadata;

/** Promisified unary call: `await call(client, client.getDevice, { uuid }, key)`. */
export function call<Req, Res>(client: Client, method: UnaryMethod<Req, Res>, req: Req, key: string | undefined): Promise<Res> {
  return unaryCall(client, method, req, withKey(key));
}

/** The google.rpc details of a failed call: ErrorInfo reason, BadRequest field names, RetryInfo delay (ms). */
export function errorDetails(err: ServiceError): { reason: string; fields: string[]; retryDelayMs: number | undefined } {
  const bin = err.metadata.get('grpc-status-details-bin')[0];
  if (!(bin instanceof Buffer)) return { reason: '', fields: [], retryDelayMs: undefined };
  const status = Status.decode(bin);
  let reason = '';
  let retryDelayMs: number | undefined;
  const fields: string[] = [];
  for (const any of status.details) {
    if (any.typeUrl.endsWith('google.rpc.ErrorInfo')) reason = ErrorInfo.decode(any.value).reason;
    if (any.typeUrl.endsWith('google.rpc.BadRequest')) fields.push(...BadRequest.decode(any.value).fieldViolations.map((v) => v.field));
    if (any.typeUrl.endsWith('google.rpc.RetryInfo')) {
      const delay = RetryInfo.decode(any.value).retryDelay;
      retryDelayMs = delay ? delay.seconds * 1000 + delay.nanos / 1e6 : 0;
    }
  }
  return { reason, fields, retryDelayMs };
}

/** Resolves with the error of a call expected to fail (rejects if it succeeds). */
export async function failure(promise: Promise<unknown>): Promise<ServiceError & ReturnType<typeof errorDetails>> {
  try {
    await promise;
  } catch (err) {
    const e = err as ServiceError;
    return Object.assign(e, errorDetails(e));
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** A positive int32 unlikely to collide across test files sharing the database. */
export const uniqueInt = (): number => 1 + Math.floor(Math.random() * 2_000_000_000);
