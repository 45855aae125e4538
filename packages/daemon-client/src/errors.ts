import { status, type ServiceError } from '@grpc/grpc-js';
import { InstallFailure } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { fullJitter } from '@titanbot/service-kit/backoff';
import { errorReason, retryInfoDelayMs } from '@titanbot/service-kit/status';

/** The server sent something the protocol does not allow; retrying would not help. */
export class ExportProtocolError extends Error {}
/** A pinned version came back with a different size or hash: the partial file is useless. */
export class PinMismatchError extends Error {}
/** The stream ended cleanly before the whole file arrived. */
export class IncompleteStreamError extends Error {}
/** The downloaded file's size or SHA-256 is not the header's (the file is discarded). */
export class ChecksumMismatchError extends Error {}

/**
 * The signed URL DownloadExport offered could not be fetched (network, an HTTP status other than
 * the one asked for, a body that ends early): the download goes on over DownloadExport instead.
 */
export class PublicUrlError extends Error {}

/** A downloaded delta could not make the announced file from the one held: download the whole file instead. */
export class DeltaFailedError extends Error {}
/** The export's schema version is newer than this client reads (SUPPORTED_SCHEMA_VERSION). */
export class SchemaTooNewError extends ExportProtocolError {}

/**
 * Why an install failed, for ReportStatus; undefined for what is not an install failure (the
 * server or the network: the fleet view sees those as a daemon that is behind or offline).
 */
export function installFailureOf(err: unknown): { failure: InstallFailure; message: string } | undefined {
  if (isServiceError(err) || err instanceof IncompleteStreamError) return undefined;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ChecksumMismatchError) return { failure: InstallFailure.INSTALL_FAILURE_CHECKSUM_MISMATCH, message };
  if (err instanceof SchemaTooNewError) return { failure: InstallFailure.INSTALL_FAILURE_SCHEMA_TOO_NEW, message };
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return { failure: InstallFailure.INSTALL_FAILURE_DISK_FULL, message };
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return { failure: InstallFailure.INSTALL_FAILURE_PERMISSION, message };
  return { failure: InstallFailure.INSTALL_FAILURE_OTHER, message };
}

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

/** Codes that say "not now" rather than "not this": the server, the network or a dependency may recover. */
const RETRYABLE_CODES = new Set<status>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED, status.ABORTED, status.INTERNAL, status.UNKNOWN]);

/** Worth trying again unchanged: a broken stream, or a server answer that says "not now" (RETRYABLE_CODES). */
export function isRetryable(err: unknown): boolean {
  return err instanceof IncompleteStreamError || (isServiceError(err) && RETRYABLE_CODES.has(err.code));
}

/** Ceiling of the wait between tries (ms): a client is back within about this long of its replica serving again. */
export const RETRY_CAP_MS = 1_000;

/**
 * How long to wait before try `attempt + 1` (ms): full jitter from 200 ms up to RETRY_CAP_MS, or
 * the server's RetryInfo delay when it asks for longer (a rate limit, a database outage).
 */
export function retryDelayMs(attempt: number, err: unknown): number {
  const jitter = fullJitter(attempt, 200, RETRY_CAP_MS);
  const asked = isServiceError(err) ? retryInfoDelayMs(err) : undefined;
  return asked === undefined ? jitter : Math.max(jitter, asked);
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
    // grpc-js ends a connection failure with an empty "Resolution note:"; it says nothing.
    return { code: status[err.code] ?? String(err.code), ...(reason ? { reason } : {}), message: (err.details || err.message).replace(/\s*Resolution note:\s*$/, '') };
  }
  return { message: err instanceof Error ? err.message : String(err) };
}
