import { status, type ServiceError } from '@grpc/grpc-js';
import { errorReason } from '@titanbot/service-kit/status';

/** The server sent something the protocol does not allow; retrying would not help. */
export class ExportProtocolError extends Error {}
/** A pinned version came back with a different size or hash: the partial file is useless. */
export class PinMismatchError extends Error {}
/** The stream ended cleanly before the whole file arrived. */
export class IncompleteStreamError extends Error {}

export function isServiceError(err: unknown): err is ServiceError {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number';
}

/** The token was refused (UNAUTHENTICATED, TOKEN_NOT_ROTATABLE) or may not call this (PERMISSION_DENIED): reload the token file. */
export function isAuthError(err: unknown): boolean {
  return isServiceError(err) && (err.code === status.UNAUTHENTICATED || err.code === status.PERMISSION_DENIED);
}

/**
 * The pinned bytes cannot be resumed: start again from zero with the latest version. Matched by
 * ErrorInfo reason (the error catalogue): EXPORT_VERSION_GONE, OFFSET_OUT_OF_RANGE.
 */
export function isRestart(err: unknown): boolean {
  if (err instanceof PinMismatchError) return true;
  if (!isServiceError(err)) return false;
  const reason = errorReason(err);
  return reason === 'EXPORT_VERSION_GONE' || reason === 'OFFSET_OUT_OF_RANGE';
}

/** Worth retrying the same download: a broken stream, or any server answer but a refused token. */
export function isTransient(err: unknown): boolean {
  return err instanceof IncompleteStreamError || (isServiceError(err) && !isAuthError(err));
}

/**
 * `{ code, reason, message }` of an error for logs: `code` is the gRPC status name (e.g.
 * `UNAVAILABLE`) and `reason` its ErrorInfo reason for a ServiceError, `code` `OK` for a stream
 * that ended without error, neither otherwise.
 */
export function describeError(err: unknown): { code?: string; reason?: string; message: string } {
  if (err === undefined) return { code: 'OK', message: 'stream ended' };
  if (isServiceError(err)) {
    const reason = errorReason(err);
    return { code: status[err.code] ?? String(err.code), ...(reason ? { reason } : {}), message: err.details || err.message };
  }
  return { message: err instanceof Error ? err.message : String(err) };
}
