/**
 * Reference peer "empty RPC" (the ceiling): DaemonService with only CheckVersion, answering one
 * constant response with no authentication, no metrics and no logging, and WatchVersion, which
 * sends its response headers and holds the stream open until the client cancels it, writing
 * nothing (so a benchmark can measure the empty RPC on a process holding as many open streams as
 * the replica it compares with), on the same grpc-js Server options as the services
 * (startGrpcServer: MAX_MESSAGE_BYTES, keepalive, stream limits, health, reflection).
 * Listens on PEER_ADDR. Every other method answers UNIMPLEMENTED (grpc-js default).
 */
import { Metadata, ServerCredentials, type handleServerStreamingCall, type handleUnaryCall } from '@grpc/grpc-js';
import { DaemonServiceService, type CheckVersionRequest, type CheckVersionResponse, type WatchVersionRequest, type WatchVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DEFAULT_STREAM_LIMITS, startGrpcServer } from '@titanbot/service-kit/grpc-server';

const address = process.env['PEER_ADDR'] ?? '127.0.0.1:0';
// The shape of a real answer: a 128-bit version in hex and a feed revision.
const RESPONSE: CheckVersionResponse = { version: '0'.repeat(32), changed: false, revision: 100_000 };
const checkVersion: handleUnaryCall<CheckVersionRequest, CheckVersionResponse> = (_call, callback) => callback(null, RESPONSE);
const watchVersion: handleServerStreamingCall<WatchVersionRequest, WatchVersionResponse> = (call) => {
  call.sendMetadata(new Metadata());
  call.once('cancelled', () => call.end());
};

const grpc = await startGrpcServer(address, ServerCredentials.createInsecure(), ['titanbot/daemon/v1/daemon_service.proto'], [
  { definition: DaemonServiceService, implementation: { checkVersion, watchVersion } },
], DEFAULT_STREAM_LIMITS);
grpc.health.setStatus('', 'SERVING');
process.once('SIGTERM', () => grpc.server.forceShutdown());
