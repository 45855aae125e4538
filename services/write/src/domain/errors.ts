/**
 * Domain errors carry a stable kind and reason; the gRPC edge maps kinds to status codes
 * (grpc/errors.ts) and never the other way round.
 */
export type DomainErrorKind =
  | 'invalid' // bad input: INVALID_ARGUMENT
  | 'not_found' // unknown id: NOT_FOUND
  | 'already_exists' // duplicate unique key: ALREADY_EXISTS
  | 'precondition' // broken invariant: FAILED_PRECONDITION
  | 'conflict' // stale etag or lost race: ABORTED
  | 'unauthenticated' // missing, unknown, expired or revoked credential: UNAUTHENTICATED
  | 'permission_denied'; // valid credential, wrong surface: PERMISSION_DENIED

/** One invalid field, named by its proto path (e.g. `habit.pixels[0].rgb_hex`). */
export interface FieldViolation {
  field: string;
  description: string;
}

export class DomainError extends Error {
  constructor(
    readonly kind: DomainErrorKind,
    /** Stable UPPER_SNAKE reason, sent as google.rpc.ErrorInfo.reason. */
    readonly reason: string,
    message: string,
    readonly violations: readonly FieldViolation[] = [],
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

/** Collects field violations so a request reports every bad field at once. */
export class Violations {
  private readonly list: FieldViolation[] = [];

  /** Records `description` for `field` unless `ok`. */
  check(ok: boolean, field: string, description: string): this {
    if (!ok) this.list.push({ field, description });
    return this;
  }

  /** Throws DomainError('invalid') listing every recorded violation; no-op when none. */
  throwIfAny(): void {
    if (this.list.length === 0) return;
    const summary = this.list.map((v) => `${v.field}: ${v.description}`).join('; ');
    throw new DomainError('invalid', 'INVALID_ARGUMENT', summary, this.list);
  }
}

export const invalid = (field: string, description: string): DomainError =>
  new DomainError('invalid', 'INVALID_ARGUMENT', `${field}: ${description}`, [{ field, description }]);

export const notFound = (resource: string, id: string | number): DomainError =>
  new DomainError('not_found', 'NOT_FOUND', `${resource} ${id} not found`);

export const alreadyExists = (resource: string, field: string, value: string | number): DomainError =>
  new DomainError('already_exists', 'ALREADY_EXISTS', `${resource} with ${field} ${value} already exists`);

/** Optimistic concurrency (AIP-154): the caller's etag is not the resource's current one. */
export function checkEtag(resource: string, current: number, etag: string | undefined): void {
  if (etag && etag !== String(current)) {
    throw new DomainError('conflict', 'ETAG_MISMATCH', `${resource} changed since etag ${etag} (now ${current})`);
  }
}

export const isInt32 = (n: number): boolean => Number.isInteger(n) && n >= -2147483648 && n <= 2147483647;
