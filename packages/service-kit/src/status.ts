import { Metadata, status as grpcStatus, type ServiceError, type status } from '@grpc/grpc-js';
import { Any } from '@titanbot/contracts/google/protobuf/any';
import { BadRequest, ErrorInfo, RetryInfo } from '@titanbot/contracts/google/rpc/error_details';
import { Status } from '@titanbot/contracts/google/rpc/status';
import type { DomainError, ErrorKind, Reason } from './errors.js';

/** The error domain sent in google.rpc.ErrorInfo. */
export const ERROR_DOMAIN = 'titanbot.dev';

/** A gRPC error as grpc-js sends it: code, message, and google.rpc.Status in trailers. */
export type StatusError = Partial<ServiceError> & { code: status; details: string; metadata: Metadata };

/**
 * Builds a ServiceError carrying google.rpc.Status in `grpc-status-details-bin`: ErrorInfo
 * `reason`, BadRequest `violations` when there are any, and RetryInfo when `retryDelayMs`
 * (ms, >= 0) is given.
 */
export function statusError(
  code: status,
  message: string,
  reason: Reason,
  violations: readonly { field: string; description: string }[] = [],
  retryDelayMs?: number,
): StatusError {
  const details: Any[] = [
    { typeUrl: 'type.googleapis.com/google.rpc.ErrorInfo', value: Buffer.from(ErrorInfo.encode({ reason, domain: ERROR_DOMAIN, metadata: {} }).finish()) },
  ];
  if (violations.length > 0) {
    details.push({
      typeUrl: 'type.googleapis.com/google.rpc.BadRequest',
      value: Buffer.from(BadRequest.encode({ fieldViolations: violations.map((v) => ({ field: v.field, description: v.description })) }).finish()),
    });
  }
  if (retryDelayMs !== undefined) {
    const ms = Math.max(0, Math.ceil(retryDelayMs));
    const retryDelay = { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
    details.push({ typeUrl: 'type.googleapis.com/google.rpc.RetryInfo', value: Buffer.from(RetryInfo.encode({ retryDelay }).finish()) });
  }
  const metadata = new Metadata();
  metadata.set('grpc-status-details-bin', Buffer.from(Status.encode({ code, message, details }).finish()));
  return { code, details: message, metadata };
}

/** The one table from catalogue error kinds to gRPC status codes. */
export const STATUS_OF_KIND: Record<ErrorKind, status> = {
  invalid: grpcStatus.INVALID_ARGUMENT,
  not_found: grpcStatus.NOT_FOUND,
  already_exists: grpcStatus.ALREADY_EXISTS,
  precondition: grpcStatus.FAILED_PRECONDITION,
  out_of_range: grpcStatus.OUT_OF_RANGE,
  conflict: grpcStatus.ABORTED,
  unauthenticated: grpcStatus.UNAUTHENTICATED,
  permission_denied: grpcStatus.PERMISSION_DENIED,
  exhausted: grpcStatus.RESOURCE_EXHAUSTED,
  unavailable: grpcStatus.UNAVAILABLE,
  internal: grpcStatus.INTERNAL,
};

/** The status a DomainError reaches the caller as (code from its reason's kind). */
export const toStatusError = (err: DomainError): StatusError =>
  statusError(STATUS_OF_KIND[err.kind], err.message, err.reason, err.violations, err.retryDelayMs);

/** The google.rpc.ErrorInfo reason a failed call carries, or '' when it carries none. */
export function errorReason(err: Partial<ServiceError>): string {
  const bin = err.metadata?.get('grpc-status-details-bin')[0];
  if (!(bin instanceof Buffer)) return '';
  for (const any of Status.decode(bin).details) {
    if (any.typeUrl.endsWith('google.rpc.ErrorInfo')) return ErrorInfo.decode(any.value).reason;
  }
  return '';
}

/** The google.rpc.RetryInfo delay a failed call carries (ms), or undefined when it carries none. */
export function retryInfoDelayMs(err: Partial<ServiceError>): number | undefined {
  const bin = err.metadata?.get('grpc-status-details-bin')[0];
  if (!(bin instanceof Buffer)) return undefined;
  for (const any of Status.decode(bin).details) {
    if (any.typeUrl.endsWith('google.rpc.RetryInfo')) {
      const delay = RetryInfo.decode(any.value).retryDelay;
      return delay ? delay.seconds * 1000 + delay.nanos / 1e6 : 0;
    }
  }
  return undefined;
}
