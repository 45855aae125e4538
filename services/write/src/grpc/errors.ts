import {
  DeadlockException,
  ForeignKeyConstraintViolationException,
  LockWaitTimeoutException,
  OptimisticLockError,
  UniqueConstraintViolationException,
} from '@mikro-orm/core';
import { DomainError } from '@titanbot/service-kit/errors';
import { CallFailure, type ErrorMapper } from '@titanbot/service-kit/pipeline';
import { UnknownDataKeyError } from '@titanbot/service-kit/secrets/data-keys';
import { SecretStoreUnavailableError } from '@titanbot/service-kit/secrets/secret-store';
import { toStatusError } from '@titanbot/service-kit/status';
import { isDatabaseUnavailable } from '../app/database-health.js';

/** Catalogue errors for failures that are not DomainErrors; `cause` set where the log should keep it. */
const fail = (reason: DomainError['reason'], message: string, cause?: unknown): CallFailure =>
  new CallFailure(toStatusError(new DomainError(reason, message)), cause);

/** How long a caller should wait before retrying a call that found a dependency down (ms): about two health probes. */
export const DEPENDENCY_RETRY_DELAY_MS = 1_000;

/** UNAVAILABLE with a RetryInfo delay. A database outage is logged by the health watcher, once, not per call. */
const unavailable = (reason: DomainError['reason'], message: string, cause?: unknown): CallFailure =>
  new CallFailure(toStatusError(new DomainError(reason, message, [], DEPENDENCY_RETRY_DELAY_MS)), cause);

/**
 * The write service's own error table, after DomainErrors: database constraint races map to
 * ALREADY_EXISTS / ABORTED CONCURRENT_MODIFICATION / FAILED_PRECONDITION REFERENCE_MISSING; a
 * database or secret store that is down, or an unknown data key, to UNAVAILABLE with RetryInfo.
 */
export const mapDatabaseErrors: readonly ErrorMapper[] = [
  (err) => (err instanceof UniqueConstraintViolationException ? fail('ALREADY_EXISTS', 'a resource with that unique key already exists') : undefined),
  (err) =>
    err instanceof OptimisticLockError || err instanceof DeadlockException || err instanceof LockWaitTimeoutException
      ? fail('CONCURRENT_MODIFICATION', 'concurrent modification; retry')
      : undefined,
  (err) => (err instanceof ForeignKeyConstraintViolationException ? fail('REFERENCE_MISSING', 'a referenced resource does not exist') : undefined),
  (err) => (err instanceof UnknownDataKeyError ? unavailable('DATA_KEY_UNAVAILABLE', 'data key not yet available; retry', err) : undefined),
  (err) => (err instanceof SecretStoreUnavailableError ? unavailable('SECRET_STORE_UNAVAILABLE', 'secret store unavailable; retry', err) : undefined),
  // Last: the errors above may carry a socket error in their cause chain too.
  (err) => (isDatabaseUnavailable(err) ? unavailable('DATABASE_UNAVAILABLE', 'database unavailable; retry') : undefined),
];
