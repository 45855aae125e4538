import { invalid } from '../domain/errors.js';

/** A calendar date `YYYY-MM-DD` as a Timestamp at 00:00 UTC. */
export const dateToTimestamp = (date: string): Date => new Date(`${date}T00:00:00Z`);

/** The UTC calendar day of a Timestamp (any time of day is dropped). INVALID_ARGUMENT when unset. */
export function timestampToDate(value: Date | undefined, field: string): string {
  if (!value || Number.isNaN(value.getTime())) throw invalid(field, 'is required');
  return value.toISOString().slice(0, 10);
}

/** google.protobuf.Duration's range: ±10,000 years, in seconds. */
const MAX_DURATION_SECONDS = 315_576_000_000;

/**
 * A positive google.protobuf.Duration -> milliseconds (sub-millisecond nanos dropped); undefined
 * when unset. INVALID_ARGUMENT naming `field` when negative or outside Duration's range
 * (seconds at most 315,576,000,000, nanos 0..999,999,999).
 */
export function durationToMs(d: { seconds: number; nanos: number } | undefined, field: string): number | undefined {
  if (!d) return undefined;
  if (d.seconds < 0 || d.nanos < 0) throw invalid(field, 'must be positive');
  if (d.seconds > MAX_DURATION_SECONDS || d.nanos > 999_999_999) throw invalid(field, `must be at most ${MAX_DURATION_SECONDS} seconds with nanos below 10^9`);
  return d.seconds * 1000 + Math.floor(d.nanos / 1e6);
}

/** Proto enum value <-> domain string, from one list of pairs. */
export function enumMap<P extends number, D extends string>(pairs: readonly (readonly [P, D])[], field: string) {
  const toDomain = new Map<number, D>(pairs);
  const toProto = new Map<D, P>(pairs.map(([p, d]) => [d, p]));
  return {
    /** INVALID_ARGUMENT for UNSPECIFIED or unknown values, unless `fallback` is given. */
    domain(value: number, fallback?: D): D {
      const d = toDomain.get(value) ?? fallback;
      if (d === undefined) throw invalid(field, `must be one of ${[...toProto.keys()].join(', ')}`);
      return d;
    },
    proto: (value: D): P => toProto.get(value)!,
  };
}

/**
 * AIP-134 update: the patch for the paths in `mask`, each path mapped by `fields`. `*` means
 * every mutable field. INVALID_ARGUMENT for an empty mask or a path that is unknown or immutable.
 */
export function patchFromMask<R, P>(
  mask: string[] | undefined,
  resource: R,
  fields: Record<string, (r: R) => Partial<P>>,
  immutable: Record<string, (r: R) => Partial<P>> = {},
): Partial<P> {
  if (!mask || mask.length === 0) throw invalid('update_mask', 'is required (or * for every mutable field)');
  const paths = mask.includes('*') ? Object.keys(fields) : mask;
  const patch: Partial<P> = {};
  for (const path of paths) {
    const pick = fields[path] ?? immutable[path];
    if (!pick) throw invalid('update_mask', `unknown or output-only path: ${path}`);
    Object.assign(patch, pick(resource));
  }
  return patch;
}

/** Proto3 `optional` scalar -> nullable domain value. */
export const orNull = <T>(value: T | undefined): T | null => (value === undefined ? null : value);
/** Nullable domain value -> proto3 `optional` scalar. */
export const orUndefined = <T>(value: T | null): T | undefined => (value === null ? undefined : value);

/** Required message field. INVALID_ARGUMENT naming `field` when absent. */
export function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw invalid(field, 'is required');
  return value;
}
