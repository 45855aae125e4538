import { status } from '@grpc/grpc-js';
import {
  ForeignKeyConstraintViolationException,
  LockWaitTimeoutException,
  DeadlockException,
  OptimisticLockError,
  UniqueConstraintViolationException,
} from '@mikro-orm/core';
import { UnknownDataKeyError } from '@titanbot/service-kit/secrets/data-keys';
import { statusError, type StatusError } from '@titanbot/service-kit/status';
import { DomainError, type DomainErrorKind } from '../domain/errors.js';
import { SecretStoreUnavailableError } from '@titanbot/service-kit/secrets/secret-store';

/** The one table from domain error kinds to gRPC status codes (DESIGN.md "Contracts"). */
const STATUS_OF: Record<DomainErrorKind, status> = {
  invalid: status.INVALID_ARGUMENT,
  not_found: status.NOT_FOUND,
  already_exists: status.ALREADY_EXISTS,
  precondition: status.FAILED_PRECONDITION,
  conflict: status.ABORTED,
  unauthenticated: status.UNAUTHENTICATED,
  permission_denied: status.PERMISSION_DENIED,
};

/** What a failed call sends, plus what only the log gets. */
export interface MappedError {
  error: StatusError;
  /** Set for unexpected errors: logged, never sent. */
  cause?: unknown;
}

/**
 * Maps anything a handler threw to a gRPC status with google.rpc details (ErrorInfo always,
 * BadRequest for field violations). Database constraint races map to ALREADY_EXISTS / ABORTED /
 * FAILED_PRECONDITION; anything unknown becomes INTERNAL with a generic message.
 */
export function mapError(err: unknown): MappedError {
  if (err instanceof DomainError) {
    return { error: statusError(STATUS_OF[err.kind], err.message, err.reason, err.violations) };
  }
  if (err instanceof UniqueConstraintViolationException) {
    return { error: statusError(status.ALREADY_EXISTS, 'a resource with that unique key already exists', 'ALREADY_EXISTS') };
  }
  if (err instanceof OptimisticLockError || err instanceof DeadlockException || err instanceof LockWaitTimeoutException) {
    return { error: statusError(status.ABORTED, 'concurrent modification; retry', 'CONCURRENT_MODIFICATION') };
  }
  if (err instanceof ForeignKeyConstraintViolationException) {
    return { error: statusError(status.FAILED_PRECONDITION, 'a referenced resource does not exist', 'REFERENCE_MISSING') };
  }
  if (err instanceof UnknownDataKeyError) {
    return { error: statusError(status.UNAVAILABLE, 'data key not yet available; retry', 'DATA_KEY_UNAVAILABLE'), cause: err };
  }
  if (err instanceof SecretStoreUnavailableError) {
    return { error: statusError(status.UNAVAILABLE, 'secret store unavailable; retry', 'SECRET_STORE_UNAVAILABLE'), cause: err };
  }
  return { error: statusError(status.INTERNAL, 'internal error', 'INTERNAL'), cause: err };
}
