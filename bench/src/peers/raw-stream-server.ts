import { ServerCredentials } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { MethodDefinition, ServerWritableStream } from '@grpc/grpc-js';
import { DEFAULT_STREAM_LIMITS, startGrpcServer, stopGrpcServer } from '@titanbot/service-kit/grpc-server';

/** Identity (de)serialiser: each message is one Buffer as it is, no protobuf work at all. */
const identity = (value: Buffer): Buffer => value;

/**
 * The raw reference stream (the ceiling of `download`): a server-streaming method whose messages
 * are the file's chunks as they are; the request is ignored. Shared with the load generator.
 */
export const RAW_STREAM_SERVICE = {
  download: {
    path: '/bench.RawStream/Download',
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  } satisfies MethodDefinition<Buffer, Buffer>,
};

/**
 * `node raw-stream-server.js <file> <chunkBytes>` with RAW_ADDR=host:port: reads the file once
 * into memory, then serves it per call as messages of `chunkBytes` (slices of that one buffer, no
 * copy), waiting for `drain` when the transport is full, stopping when the call is cancelled.
 * Health SERVING once listening; SIGTERM stops it.
 */
async function main(): Promise<void> {
  const [file, chunkArg] = process.argv.slice(2);
  const address = process.env['RAW_ADDR'];
  if (!file || !chunkArg || !address) throw new Error('usage: RAW_ADDR=host:port raw-stream-server.js <file> <chunkBytes>');
  const data = readFileSync(file);
  const chunkBytes = Number(chunkArg);
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; at += chunkBytes) chunks.push(data.subarray(at, Math.min(at + chunkBytes, data.length)));

  const download = (call: ServerWritableStream<Buffer, Buffer>): void => {
    let next = 0;
    const pump = (): void => {
      while (next < chunks.length) {
        if (call.cancelled) return;
        if (!call.write(chunks[next++]!)) {
          call.once('drain', pump);
          return;
        }
      }
      call.end();
    };
    pump();
  };
  const grpc = await startGrpcServer(address, ServerCredentials.createInsecure(), ['titanbot/daemon/v1/daemon_service.proto'], [{ definition: RAW_STREAM_SERVICE, implementation: { download } }], DEFAULT_STREAM_LIMITS);
  grpc.health.setStatus('', 'SERVING');
  process.once('SIGTERM', () => void stopGrpcServer(grpc.server, 1_000).then(() => process.exit(0)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
