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

/** Catalogue errors for failures that are not DomainErrors; `cause` set where the log should keep it. */
const fail = (reason: DomainError['reason'], message: string, cause?: unknown): CallFailure =>
  new CallFailure(toStatusError(new DomainError(reason, message)), cause);

/**
 * The write service's own error table, after DomainErrors: database constraint races map to
 * ALREADY_EXISTS / ABORTED CONCURRENT_MODIFICATION / FAILED_PRECONDITION REFERENCE_MISSING, an
 * unknown data key or a secret store that is down to UNAVAILABLE.
 */
export const mapDatabaseErrors: readonly ErrorMapper[] = [
  (err) => (err instanceof UniqueConstraintViolationException ? fail('ALREADY_EXISTS', 'a resource with that unique key already exists') : undefined),
  (err) =>
    err instanceof OptimisticLockError || err instanceof DeadlockException || err instanceof LockWaitTimeoutException
      ? fail('CONCURRENT_MODIFICATION', 'concurrent modification; retry')
      : undefined,
  (err) => (err instanceof ForeignKeyConstraintViolationException ? fail('REFERENCE_MISSING', 'a referenced resource does not exist') : undefined),
  (err) => (err instanceof UnknownDataKeyError ? fail('DATA_KEY_UNAVAILABLE', 'data key not yet available; retry', err) : undefined),
  (err) => (err instanceof SecretStoreUnavailableError ? fail('SECRET_STORE_UNAVAILABLE', 'secret store unavailable; retry', err) : undefined),
];
