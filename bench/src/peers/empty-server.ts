/**
 * Reference peer "empty RPC" (the ceiling): DaemonService with only CheckVersion, answering one
 * constant response with no authentication, no metrics and no logging, and WatchVersion, which
 * sends its response headers and holds the stream open until the client cancels it (so a
 * benchmark can measure the empty RPC on a process holding as many open streams as the replica it
 * compares with), on the same grpc-js Server options as the services (startGrpcServer:
 * MAX_MESSAGE_BYTES, keepalive, stream limits, health, reflection).
 *
 * SIGUSR2 pushes one new WatchVersionResponse to every held stream the way the replica tells its
 * watchers of a change (encoded once, 1,024 streams a macrotask, as NOTIFY_SLICE), with nothing
 * before it: no write service, no feed, no SQLite. That is the floor of the `watch-fanout`
 * benchmark on this transport. Listens on PEER_ADDR. Every other method answers UNIMPLEMENTED
 * (grpc-js default).
 */
import { Metadata, ServerCredentials, type handleServerStreamingCall, type handleUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { DaemonServiceService, WatchVersionResponse, type CheckVersionRequest, type CheckVersionResponse, type WatchVersionRequest } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DEFAULT_STREAM_LIMITS, startGrpcServer } from '@titanbot/service-kit/grpc-server';

const address = process.env['PEER_ADDR'] ?? '127.0.0.1:0';
// The shape of a real answer: a 128-bit version in hex and a feed revision.
const RESPONSE: CheckVersionResponse = { version: '0'.repeat(32), changed: false, revision: 100_000 };
/** Streams told per macrotask of a push (the replica's NOTIFY_SLICE). */
const PUSH_SLICE = 1024;

const watching = new Set<ServerWritableStream<WatchVersionRequest, WatchVersionResponse>>();
let current: { message: WatchVersionResponse; bytes: Buffer } | undefined;

const checkVersion: handleUnaryCall<CheckVersionRequest, CheckVersionResponse> = (_call, callback) => callback(null, RESPONSE);
const watchVersion: handleServerStreamingCall<WatchVersionRequest, WatchVersionResponse> = (call) => {
  call.sendMetadata(new Metadata());
  watching.add(call);
  call.once('cancelled', () => {
    watching.delete(call);
    call.end();
  });
};
// The pushed message is encoded once for every stream, as the replica's watchVersionEncoder does.
const encodeWatchVersion = (message: WatchVersionResponse): Buffer =>
  message === current?.message ? current.bytes : Buffer.from(WatchVersionResponse.encode(message).finish());

process.on('SIGUSR2', () => {
  const revision = (current?.message.revision ?? RESPONSE.revision) + 1;
  const message: WatchVersionResponse = { version: revision.toString(16).padStart(32, '0'), revision };
  current = { message, bytes: Buffer.from(WatchVersionResponse.encode(message).finish()) };
  const calls = watching.values();
  const slice = (): void => {
    for (let told = 0; told < PUSH_SLICE; told++) {
      const next = calls.next();
      if (next.done) return;
      next.value.write(message);
    }
    setImmediate(slice);
  };
  slice();
});

const grpc = await startGrpcServer(address, ServerCredentials.createInsecure(), ['titanbot/daemon/v1/daemon_service.proto'], [
  { definition: { ...DaemonServiceService, watchVersion: { ...DaemonServiceService.watchVersion, responseSerialize: encodeWatchVersion } }, implementation: { checkVersion, watchVersion } },
], DEFAULT_STREAM_LIMITS);
grpc.health.setStatus('', 'SERVING');
process.once('SIGTERM', () => grpc.server.forceShutdown());
