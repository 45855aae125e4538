import { Server, ServerCredentials, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { PROTO_ROOT } from './protos.js';
import { decodeLeniently } from './request-checks.js';

/** Largest message either side may send: 4 MiB (a snapshot page or log batch stays far below). */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;


export interface GrpcServer {
  server: Server;
  health: HealthImplementation;
  /** The bound port (useful when asked for port 0). */
  port: number;
}

/**
 * Builds a grpc-js server with the given services, serving `creds` (tls.ts: TLS or plaintext), grpc.health.v1 (NOT_SERVING until told
 * otherwise) and server reflection over `protoFiles` (paths under proto/, for grpcurl), and
 * binds it to `address` (host:port, port 0 = any). Requests that do not decode reach the handlers
 * as `UndecodableRequest`s (request-checks.ts), not as grpc-js's INTERNAL. Rejects when the
 * address cannot be bound.
 */
export async function startGrpcServer(
  address: string,
  creds: ServerCredentials,
  protoFiles: string[],
  services: { definition: Parameters<Server['addService']>[0]; implementation: UntypedServiceImplementation }[],
): Promise<GrpcServer> {
  const server = new Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
  });
  for (const s of services) server.addService(decodeLeniently(s.definition, protoFiles), s.implementation);
  const health = new HealthImplementation({ '': 'NOT_SERVING' });
  health.addToServer(server);
  const descriptors = loadSync(protoFiles, { includeDirs: [PROTO_ROOT], keepCase: true });
  new ReflectionService(descriptors).addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, creds, (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return { server, health, port };
}

/** Graceful stop: lets calls finish for up to `graceMs` (ms), then cancels what is left. */
export function stopGrpcServer(server: Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
