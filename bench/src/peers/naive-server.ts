/**
 * Reference peer "naive" (the original system's approach): DaemonService.CheckVersion runs
 * `select max(updated_at)` over the scope's habits in PostgreSQL for every call (pg Pool of 8 on
 * DATABASE_URL) and answers that timestamp's ISO string. No authentication (that only favours
 * it). Listens on PEER_ADDR; every other method answers UNIMPLEMENTED.
 */
import { ServerCredentials, status, type handleUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { DaemonServiceService, type CheckVersionRequest, type CheckVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DEFAULT_STREAM_LIMITS, startGrpcServer } from '@titanbot/service-kit/grpc-server';
import pg from 'pg';

const address = process.env['PEER_ADDR'] ?? '127.0.0.1:0';
const pool = new pg.Pool({ connectionString: process.env['DATABASE_URL'], max: 8 });

const ACCOUNT_SCOPE = { name: 'naive_account_version', text: 'select max(updated_at) as v from habits where account_logical_id = $1 or account_logical_id is null' };
const GLOBAL_SCOPE = { name: 'naive_global_version', text: 'select max(updated_at) as v from habits where account_logical_id is null' };

const checkVersion: handleUnaryCall<CheckVersionRequest, CheckVersionResponse> = (call, callback) => {
  const { logicalId, knownVersion } = call.request;
  const query = logicalId === undefined ? pool.query<{ v: Date | null }>({ ...GLOBAL_SCOPE, values: [] }) : pool.query<{ v: Date | null }>({ ...ACCOUNT_SCOPE, values: [logicalId] });
  query.then(
    (result) => {
      const v = result.rows[0]?.v;
      const version = v ? v.toISOString() : '';
      callback(null, { version, changed: version !== knownVersion, revision: 0 });
    },
    (err: unknown) => callback({ code: status.INTERNAL, details: String(err) } as ServiceError),
  );
};

const grpc = await startGrpcServer(address, ServerCredentials.createInsecure(), ['titanbot/daemon/v1/daemon_service.proto'], [
  { definition: DaemonServiceService, implementation: { checkVersion } },
], DEFAULT_STREAM_LIMITS);
grpc.health.setStatus('', 'SERVING');
process.once('SIGTERM', () => {
  grpc.server.forceShutdown();
  void pool.end();
});
