import { Metadata, type CallOptions, type ServiceError } from '@grpc/grpc-js';

/** The metadata key every credential travels in (docs/domain.md "Who may call what"). */
export const API_KEY_HEADER = 'x-api-key';

/** Metadata carrying `key` as `x-api-key`; empty when `key` is undefined. */
export function apiKeyMetadata(key: string | undefined): Metadata {
  const metadata = new Metadata();
  if (key !== undefined) metadata.set(API_KEY_HEADER, key);
  return metadata;
}

/** A unary method of a generated grpc-js client, in its (request, metadata, options, callback) form. */
export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => unknown;

/**
 * Calls `method` of `client` and resolves with the response; rejects with the grpc-js
 * ServiceError of a failed call (code, details, metadata with google.rpc.Status: read its reason
 * with `errorReason`). `options.deadline` is a Date or ms since the epoch.
 */
export function unaryCall<Req, Res>(client: object, method: UnaryMethod<Req, Res>, request: Req, metadata: Metadata, options: Partial<CallOptions> = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, request, metadata, options, (err, response) => (err ? reject(err) : resolve(response)));
  });
}
