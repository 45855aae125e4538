import { readdirSync } from 'node:fs';
import path from 'node:path';
import { Client, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { loadProtoRoot, PROTO_ROOT } from '@titanbot/service-kit/protos';
import { errorDetails } from '@titanbot/write/test-support/harness';

/**
 * Every service in proto/titanbot, loaded with protobufjs (field names as in the .proto files).
 * protobufjs encodes what our generated number-typed code cannot: int64 values beyond 2^53.
 */
export function loadProtoServices(): { root: protobuf.Root; services: protobuf.Service[] } {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('_service.proto')) files.push(path.relative(PROTO_ROOT, full));
    }
  };
  walk(path.join(PROTO_ROOT, 'titanbot'));
  const root = loadProtoRoot(files);
  const services: protobuf.Service[] = [];
  const collect = (ns: protobuf.NamespaceBase): void => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Service) services.push(nested);
      else if (nested instanceof protobuf.Namespace) collect(nested);
    }
  };
  collect(root);
  return { root, services };
}

/** How a raw call ended: its code, message, google.rpc details and (unary, OK) the response bytes. */
export interface RawOutcome {
  code: status;
  details: string;
  reason: string;
  fields: string[];
  response?: Buffer;
}

const identity = (b: Buffer): Buffer => b;

/**
 * Sends `bytes` as the request of `path` with `x-api-key: key`, as they are. For a stream, the
 * first message counts as OK (the request was accepted) and the stream is cancelled.
 */
export function rawCall(client: Client, path: string, bytes: Buffer, key: string, stream = false): Promise<RawOutcome> {
  const metadata = new Metadata();
  metadata.set('x-api-key', key);
  const deadline = Date.now() + 10_000;
  const failed = (err: ServiceError): RawOutcome => ({ code: err.code, details: err.details, ...errorDetails(err) });
  const ok = (response?: Buffer): RawOutcome => ({ code: status.OK, details: '', reason: '', fields: [], ...(response ? { response } : {}) });
  return new Promise((resolve) => {
    if (!stream) {
      client.makeUnaryRequest(path, identity, identity, bytes, metadata, { deadline }, (err: ServiceError | null, response?: Buffer) =>
        resolve(err ? failed(err) : ok(response)),
      );
      return;
    }
    const call = client.makeServerStreamRequest(path, identity, identity, bytes, metadata, { deadline });
    call.on('data', () => {
      call.cancel();
      resolve(ok());
    });
    call.on('error', (err: ServiceError) => resolve(failed(err)));
    call.on('end', () => resolve(ok()));
  });
}

/** `object` (proto field names; int64 as decimal strings) encoded as `typeName`. */
export function encode(root: protobuf.Root, typeName: string, object: Record<string, unknown>): Buffer {
  const type = root.lookupType(typeName);
  return Buffer.from(type.encode(type.fromObject(object)).finish());
}
