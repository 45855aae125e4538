import { DomainError, type FieldViolation } from '@titanbot/service-kit/errors';

/**
 * Domain errors are the catalogue's (`@titanbot/service-kit/errors`): a stable reason whose kind
 * the gRPC edge maps to a status code, never the other way round.
 */
export { DomainError, invalid, notFound, underField, type FieldViolation } from '@titanbot/service-kit/errors';

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
    throw new DomainError('INVALID_ARGUMENT', summary, this.list);
  }
}

export const alreadyExists = (resource: string, field: string, value: string | number): DomainError =>
  new DomainError('ALREADY_EXISTS', `${resource} with ${field} ${value} already exists`);

/** Optimistic concurrency (AIP-154): the caller's etag is not the resource's current one. */
export function checkEtag(resource: string, current: number, etag: string | undefined): void {
  if (etag && etag !== String(current)) {
    throw new DomainError('ETAG_MISMATCH', `${resource} changed since etag ${etag} (now ${current})`);
  }
}

export const isInt32 = (n: number): boolean => Number.isInteger(n) && n >= -2147483648 && n <= 2147483647;
