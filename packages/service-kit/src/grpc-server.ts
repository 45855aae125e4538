import {
  Metadata,
  ResponderBuilder,
  Server,
  ServerCredentials,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status,
  type ServerInterceptor,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
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

/** Limits on what one connection may hold open (GRPC_MAX_CONCURRENT_STREAMS, GRPC_REQUEST_MESSAGE_TIMEOUT). */
export interface StreamLimits {
  /** HTTP/2 streams open at once per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams: number;
  /** ms a call may stay open before its request message has arrived. */
  requestMessageTimeoutMs: number;
}

/**
 * The defaults of both services: 1,000 streams (a daemon needs a few; a replica's channel to the
 * write service carries its daemons' forwarded calls, and HTTP/2 clients queue streams beyond the
 * limit), and 10 s for a request message (a daemon sends it with the headers).
 */
export const DEFAULT_STREAM_LIMITS: StreamLimits = { maxConcurrentStreams: 1000, requestMessageTimeoutMs: 10_000 };

/**
 * Ends a call of a method with one request message (unary or server-streaming) whose message has
 * not arrived `timeoutMs` after the call opened, DEADLINE_EXCEEDED, so a stream opened with
 * headers only cannot hold the server's memory before any credential is looked at (handlers and
 * the pipeline run only once the message is there). Methods with a request stream (reflection)
 * are left alone: their client sends when it likes.
 */
function requestMessageDeadline(timeoutMs: number): ServerInterceptor {
  return (method, call) => {
    if (method.requestStream) return new ServerInterceptingCall(call);
    let timer: NodeJS.Timeout | undefined;
    const responder = new ResponderBuilder()
      .withStart((next) => {
        timer = setTimeout(() => {
          call.sendStatus({ code: status.DEADLINE_EXCEEDED, details: `the request message did not arrive within ${timeoutMs} ms`, metadata: new Metadata() });
        }, timeoutMs).unref();
        next(
          new ServerListenerBuilder()
            .withOnReceiveMessage((message, nextMessage) => {
              clearTimeout(timer);
              nextMessage(message);
            })
            .withOnCancel(() => clearTimeout(timer))
            .build(),
        );
      })
      .withSendStatus((callStatus, nextStatus) => {
        clearTimeout(timer);
        nextStatus(callStatus);
      })
      .build();
    return new ServerInterceptingCall(call, responder);
  };
}

/**
 * Builds a grpc-js server with the given services, serving `creds` (tls.ts: TLS or plaintext), grpc.health.v1 (NOT_SERVING until told
 * otherwise) and server reflection over `protoFiles` (paths under proto/, for grpcurl), and
 * binds it to `address` (host:port, port 0 = any). Requests that do not decode reach the handlers
 * as `UndecodableRequest`s (request-checks.ts), not as grpc-js's INTERNAL. Each connection holds
 * at most `limits.maxConcurrentStreams` streams, and a call's request message must arrive within
 * `limits.requestMessageTimeoutMs` (`requestMessageDeadline`). Rejects when the address cannot be
 * bound.
 */
export async function startGrpcServer(
  address: string,
  creds: ServerCredentials,
  protoFiles: string[],
  services: { definition: Parameters<Server['addService']>[0]; implementation: UntypedServiceImplementation }[],
  limits: StreamLimits,
): Promise<GrpcServer> {
  const server = new Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    // No channelz service is served, so its per-call and per-message bookkeeping is dropped.
    'grpc.enable_channelz': 0,
    interceptors: [requestMessageDeadline(limits.requestMessageTimeoutMs)],
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
