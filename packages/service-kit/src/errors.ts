/**
 * The error catalogue: every google.rpc.ErrorInfo `reason` either service sends (domain
 * `titanbot.dev`), with its kind (which fixes the gRPC status code, `status.ts`), what it means and
 * what a client should do. Clients branch on the reason, not only on the code. The proto comments
 * point here, and docs/architecture.md lists the table. This module imports nothing, so a
 * service's `domain/` layer may raise catalogue errors without depending on gRPC.
 */

/** What kind of failure a reason is; `status.ts` maps each kind to one gRPC status code. */
export type ErrorKind =
  | 'invalid' // INVALID_ARGUMENT
  | 'not_found' // NOT_FOUND
  | 'already_exists' // ALREADY_EXISTS
  | 'precondition' // FAILED_PRECONDITION
  | 'out_of_range' // OUT_OF_RANGE
  | 'conflict' // ABORTED
  | 'unauthenticated' // UNAUTHENTICATED
  | 'permission_denied' // PERMISSION_DENIED
  | 'exhausted' // RESOURCE_EXHAUSTED
  | 'unavailable' // UNAVAILABLE
  | 'internal'; // INTERNAL

export interface CatalogueEntry {
  kind: ErrorKind;
  /** When the reason is sent. */
  meaning: string;
  /** What a client (daemon, titanctl, a replica) should do about it. */
  action: string;
}

export const ERROR_CATALOGUE = {
  INVALID_ARGUMENT: {
    kind: 'invalid',
    meaning: 'A request field is malformed or out of its allowed range; BadRequest lists every bad field by its proto path.',
    action: 'Fix the named fields; retrying the same request fails again.',
  },
  MALFORMED_MESSAGE: {
    kind: 'invalid',
    meaning: 'The request bytes are not a valid message of the method\'s request type (truncated, wrong wire types, or an int64 beyond ±(2^53 - 1), named in BadRequest).',
    action: 'Fix the client\'s encoding or the named field; retrying the same bytes fails again.',
  },
  NOT_FOUND: {
    kind: 'not_found',
    meaning: 'The named resource (uuid, logical id, date) does not exist.',
    action: 'Check the identifier; do not retry unchanged.',
  },
  ALREADY_EXISTS: {
    kind: 'already_exists',
    meaning: 'A resource with the same unique key (physical_id, port, logical_id, date, an imported token) exists.',
    action: 'Use the existing resource, or choose another key.',
  },
  ETAG_MISMATCH: {
    kind: 'conflict',
    meaning: 'The etag sent with an update is not the resource\'s current one (AIP-154): it changed since it was read.',
    action: 'Get the resource again, re-apply the change, and send the new etag.',
  },
  CONCURRENT_MODIFICATION: {
    kind: 'conflict',
    meaning: 'Another transaction changed the same rows at the same time (lost optimistic lock, deadlock or lock timeout).',
    action: 'Retry the whole call (with the same request_id for creates).',
  },
  ROTATION_RACE: {
    kind: 'conflict',
    meaning: 'Another write replica rotated the admin token or data key first (check-and-set lost).',
    action: 'Read the new secret; retry only if a further rotation is still wanted.',
  },
  REFERENCE_MISSING: {
    kind: 'precondition',
    meaning: 'A referenced resource was deleted while the call ran.',
    action: 'Re-read the referenced resources and retry.',
  },
  SSH_MISSING: {
    kind: 'precondition',
    meaning: 'The device has no SSH key pair (an invariant broken outside the API).',
    action: 'Report it to an operator; RotateDeviceSsh cannot repair it.',
  },
  NO_FREE_PORT: {
    kind: 'precondition',
    meaning: 'Every SSH port from SSH_PORT_RANGE_START up to 65535 is taken.',
    action: 'Delete unused devices or lower SSH_PORT_RANGE_START.',
  },
  RESYNC_REQUIRED: {
    kind: 'precondition',
    meaning: 'The change feed cannot continue from the given (epoch, revision): pruned history, a revision ahead of the head, or another epoch.',
    action: 'Call Snapshot, rebuild from it, then Subscribe after the snapshot\'s revision.',
  },
  EXPORT_VERSION_GONE: {
    kind: 'precondition',
    meaning: 'A download pinned to a version this replica no longer keeps, or a resumed delta whose base it no longer keeps.',
    action: 'Start the download again from offset 0 with an empty version (the latest).',
  },
  OFFSET_OUT_OF_RANGE: {
    kind: 'out_of_range',
    meaning: 'A download offset is past the end of the file.',
    action: 'Start the download again from offset 0.',
  },
  ROLLOUT_IN_PROGRESS: {
    kind: 'precondition',
    meaning: 'The habit is changed by a rollout that has not ended (ordinary writes to it wait for the rollout), or another rollout of the same scope has not ended (at most one per scope; a global rollout\'s scope is every scope). The message names the rollout.',
    action: 'Let the rollout complete, or abort it (AbortRollout), then write again; or put the change in the rollout\'s next one.',
  },
  ROLLOUT_STATE_MISMATCH: {
    kind: 'precondition',
    meaning: 'The rollout is not in a state the call applies to (e.g. AdvanceRollout on a completed rollout, StartRollout on a running one).',
    action: 'GetRollout for its state; do not retry unchanged.',
  },
  ROLLOUT_STEP_NOT_DUE: {
    kind: 'precondition',
    meaning: 'AdvanceRollout before the current step has been held for its min_duration; the message says when it will have been.',
    action: 'Advance after that time.',
  },
  UNAUTHENTICATED: {
    kind: 'unauthenticated',
    meaning: 'The x-api-key credential or the OAuth 2.0 bearer token is missing, malformed, unknown, expired or revoked (one answer for all, so callers learn nothing about which tokens exist).',
    action: 'Get a new credential from an operator; retrying with the same one fails again.',
  },
  TOKEN_NOT_ROTATABLE: {
    kind: 'unauthenticated',
    meaning: 'RotateToken on a daemon token that is unknown, expired, revoked or already rotated.',
    action: 'Use the successor token if it was stored; otherwise ask an operator for a new token.',
  },
  PERMISSION_DENIED: {
    kind: 'permission_denied',
    meaning: 'A valid credential of the wrong kind for this API (e.g. a daemon token on the admin API).',
    action: 'Use the credential this API takes (see the policy table in docs/architecture.md).',
  },
  SCOPE_NOT_OF_DEVICE: {
    kind: 'permission_denied',
    meaning: 'A daemon asked for a logical id that is not an account of its device.',
    action: 'Ask for 0 (global) or one of GetDevice.account_logical_ids.',
  },
  LEGION_NOT_OF_DEVICE: {
    kind: 'permission_denied',
    meaning: 'A daemon asked for a legion none of its device\'s accounts belongs to.',
    action: 'Ask only for legions of ListAccounts\' accounts.',
  },
  RATE_LIMITED: {
    kind: 'exhausted',
    meaning: 'The device (all its daemon tokens together) made more than DAEMON_RPS calls per second (DAEMON_BURST at once).',
    action: 'Wait for the RetryInfo delay, then retry.',
  },
  LOG_RATE_LIMITED: {
    kind: 'exhausted',
    meaning: 'The device sent more than DAEMON_LOG_LINES_PER_SECOND log lines per second (DAEMON_LOG_LINES_BURST at once); none of the call\'s lines was stored.',
    action: 'Wait for the RetryInfo delay, then send the same lines again (with the same request_id).',
  },
  WATCH_LIMIT: {
    kind: 'exhausted',
    meaning: 'The device already holds DAEMON_MAX_WATCHES open WatchVersion streams on this replica (whichever of its tokens opened them).',
    action: 'Close watches that are no longer read (one per scope is enough), then retry after the RetryInfo delay.',
  },
  DOWNLOADS_BUSY: {
    kind: 'exhausted',
    meaning: 'The DownloadExport streams running hold the replica\'s memory budget for downloads (DOWNLOADS_MEMORY_BUDGET), or DOWNLOADS_MAX_CONCURRENT of them run.',
    action: 'Retry after the RetryInfo delay (paced and spread so that a herd of daemons comes back spread out), or at another replica.',
  },
  AUTH_THROTTLED: {
    kind: 'exhausted',
    meaning: 'Too many failed authentications from this peer address (AUTH_FAILURES_PER_SECOND, AUTH_FAILURES_BURST); the presented credential was not looked at.',
    action: 'Fix the credential, wait for the RetryInfo delay, then retry.',
  },
  DATA_KEY_UNAVAILABLE: {
    kind: 'unavailable',
    meaning: 'A secret is sealed under a data key this process cannot load yet (just rotated, or the secret store is down).',
    action: 'Retry with backoff.',
  },
  SECRET_STORE_UNAVAILABLE: {
    kind: 'unavailable',
    meaning: 'The secret store (Vault or the file store) did not answer.',
    action: 'Retry with backoff.',
  },
  DATABASE_UNAVAILABLE: {
    kind: 'unavailable',
    meaning: 'The write service\'s PostgreSQL did not answer (down, restarting, or out of connections); its health is NOT_SERVING meanwhile. The call changed nothing unless it was answered.',
    action: 'Retry after the RetryInfo delay, with backoff; creates with the same request_id.',
  },
  IDENTITY_PROVIDER_UNAVAILABLE: {
    kind: 'unavailable',
    meaning: 'The OpenID Provider (OIDC_ISSUER) did not answer when its keys were needed to check an access token.',
    action: 'Retry after the RetryInfo delay; the token itself may be fine.',
  },
  WRITE_SERVICE_UNAVAILABLE: {
    kind: 'unavailable',
    meaning: 'A read replica could not reach the write service for a forwarded call (WriteLogs, RotateToken) within its deadline.',
    action: 'Retry with backoff; the call changed nothing unless it was answered.',
  },
  INTERNAL: {
    kind: 'internal',
    meaning: 'An unexpected failure; the cause is in the service\'s log, never in the answer.',
    action: 'Retry later and report it if it persists.',
  },
} as const satisfies Record<string, CatalogueEntry>;

/** Every reason a service may send. */
export type Reason = keyof typeof ERROR_CATALOGUE;

/** One invalid field, named by its proto path (e.g. `habit.pixels[0].rgb_hex`). */
export interface FieldViolation {
  field: string;
  description: string;
}

/**
 * An error a service raises on purpose, from any layer: it reaches the caller with the status code
 * of its reason's kind, ErrorInfo `reason`, BadRequest `violations` when there are any, and with
 * `retryDelayMs` (ms) a RetryInfo telling the caller when to try again.
 */
export class DomainError extends Error {
  readonly kind: ErrorKind;

  constructor(
    readonly reason: Reason,
    message: string,
    readonly violations: readonly FieldViolation[] = [],
    readonly retryDelayMs?: number,
  ) {
    super(message);
    this.name = 'DomainError';
    this.kind = ERROR_CATALOGUE[reason].kind;
  }
}

/** INVALID_ARGUMENT naming one bad field. */
export const invalid = (field: string, description: string): DomainError =>
  new DomainError('INVALID_ARGUMENT', `${field}: ${description}`, [{ field, description }]);

/** `err` as part of a larger request: its message and every violation's field under `path` (e.g. `changes[2].update`). */
export const underField = (err: DomainError, path: string): DomainError =>
  new DomainError(err.reason, `${path}: ${err.message}`, err.violations.map((v) => ({ ...v, field: `${path}.${v.field}` })), err.retryDelayMs);

/** NOT_FOUND for `resource` `id`. */
export const notFound = (resource: string, id: string | number): DomainError => new DomainError('NOT_FOUND', `${resource} ${id} not found`);
