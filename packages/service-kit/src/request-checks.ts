/**
 * Checks every request must pass before a handler, a database or a timer sees it; the limits are
 * stated here and in the proto comments (docs/architecture.md, "Input limits").
 *
 * - Bytes that do not decode as the method's request type (truncated, wrong wire types, an int64
 *   beyond ±2^53, which our number-typed messages cannot hold) arrive as an `UndecodableRequest`
 *   instead of grpc-js's INTERNAL "Error deserializing request" (`decodeLeniently`).
 * - Every string is at most `MAX_STRING_CHARS` characters (UTF-16 code units), or its field's own
 *   limit in `LONG_STRING_FIELDS`, and holds no NUL (PostgreSQL `text` cannot store one).
 * - Every Timestamp is within google.protobuf.Timestamp's range, 0001-01-01 to 9999-12-31 UTC
 *   (PostgreSQL and JavaScript hold wider ranges, which clients must not rely on).
 * - Every double or float is finite.
 * - Every `request_id` is empty or a UUID (AIP-155): it is a key the services store.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { validate as isUuid } from 'uuid';
import { InstallFailure } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DomainError, type FieldViolation } from './errors.js';
import { loadProtoRoot } from './protos.js';

/** Default maximum length of a request string, in characters. */
export const MAX_STRING_CHARS = 1024;

/** The longest daemon log line, in characters (WriteLogs, IngestLogs, the legacy log routes). */
export const MAX_LOG_LINE_CHARS = 16_384;

/** Fields (by proto name, in any message) allowed longer strings, in characters. */
export const LONG_STRING_FIELDS: Readonly<Record<string, number>> = {
  line: MAX_LOG_LINE_CHARS,
  public_key: 16_384,
  private_key: 16_384,
  trigger_shell: 4096,
  log_template: 4096,
  comment: 4096,
  context: 4096,
  action: 4096,
};

/** Most log lines one WriteLogs or IngestLogs call carries (and one legacy bulk request). */
export const MAX_LOG_LINES_PER_CALL = 1000;

/** google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z ... 9999-12-31T23:59:59.999Z (ms). */
export const MIN_TIMESTAMP_MS = new Date('0001-01-01T00:00:00Z').getTime();
export const MAX_TIMESTAMP_MS = new Date('9999-12-31T23:59:59.999Z').getTime();

/** A request whose bytes did not decode; the pipeline answers INVALID_ARGUMENT MALFORMED_MESSAGE. */
export class UndecodableRequest {
  constructor(
    /** What was wrong, for the caller. */
    readonly message: string,
    /** The offending field when it could be found (an int64 beyond ±2^53). */
    readonly violations: readonly FieldViolation[],
  ) {}
}

/**
 * `definition` with each method's request deserializer made total: bytes that fail to decode
 * become an `UndecodableRequest` (naming the field when an int64 is out of range), which
 * `checkRequest` turns into INVALID_ARGUMENT. `protoFiles` (paths under proto/) describe the
 * requests; they are parsed only when a request first fails to decode.
 */
export function decodeLeniently(definition: ServiceDefinition, protoFiles: readonly string[]): ServiceDefinition {
  let root: protobuf.Root | undefined;
  const describe = (method: string, bytes: Buffer, err: unknown): UndecodableRequest => {
    root ??= loadProtoRoot(protoFiles);
    return describeFailure(root, method, bytes, err);
  };
  const lenient = Object.fromEntries(
    Object.entries(definition).map(([name, method]) => [
      name,
      {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          try {
            return method.requestDeserialize(bytes);
          } catch (err) {
            return describe(method.path, bytes, err);
          }
        },
      },
    ]),
  );
  return lenient;
}

const INT64_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/** Why `bytes` did not decode as `method`'s request: protobufjs decodes 64-bit values exactly, so it can name the field. */
function describeFailure(root: protobuf.Root, methodPath: string, bytes: Buffer, err: unknown): UndecodableRequest {
  const [, serviceName = '', methodName = ''] = methodPath.split('/');
  const requestType = root.lookupService(serviceName).methods[methodName]!.resolvedRequestType!;
  let decoded: protobuf.Message;
  try {
    decoded = requestType.decode(bytes);
  } catch (parseErr) {
    return new UndecodableRequest(`the request is not a valid ${requestType.fullName.slice(1)} message: ${(parseErr as Error).message}`, []);
  }
  const violations = unsafeIntegers(requestType, decoded, '');
  if (violations.length > 0) return new UndecodableRequest(`${violations[0]!.field}: ${violations[0]!.description}`, violations);
  return new UndecodableRequest(`the request is not a valid ${requestType.fullName.slice(1)} message: ${(err as Error).message}`, []);
}

/** Paths of 64-bit integer fields of `message` outside ±(2^53 - 1). */
function unsafeIntegers(type: protobuf.Type, message: protobuf.Message, prefix: string): FieldViolation[] {
  const found: FieldViolation[] = [];
  const values = message as unknown as Record<string, unknown>;
  for (const field of type.fieldsArray) {
    const value = values[field.name];
    if (value === undefined || value === null) continue;
    const list = field.repeated ? (value as unknown[]) : [value];
    list.forEach((item, i) => {
      const at = `${prefix}${field.name}${field.repeated ? `[${i}]` : ''}`;
      if (INT64_TYPES.has(field.type) && !Number.isSafeInteger(Number(String(item)))) {
        found.push({ field: at, description: `must be between -(2^53 - 1) and 2^53 - 1, was ${String(item)}` });
      } else if (field.resolvedType instanceof protobuf.Type) {
        found.push(...unsafeIntegers(field.resolvedType, item as protobuf.Message, `${at}.`));
      }
    });
  }
  return found;
}

/** Proto names already made, by property: a request's property names come from the generated code. */
const protoNames = new Map<string, string>();
/** More than any message set has; a bound, should a map field ever bring the client's own keys. */
const MAX_PROTO_NAMES = 4096;

/** snake_case proto name of a ts-proto (camelCase) property. */
function protoName(property: string): string {
  let name = protoNames.get(property);
  if (name === undefined) {
    name = property.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (protoNames.size < MAX_PROTO_NAMES) protoNames.set(property, name);
  }
  return name;
}

/** The path of member `key` (a proto name, or an index) of the value at `parent`. */
const pathOf = (parent: string, key: string | number): string => (typeof key === 'number' ? `${parent}[${key}]` : parent ? `${parent}.${key}` : key);

/**
 * The field violations of a decoded request (empty when it passes): strings too long or holding
 * NUL, Timestamps out of range, doubles that are not finite. Paths are proto paths
 * (`habit.pixels[2].rgb_hex`; a oneof member by its field name). A request that passes costs no
 * allocation per field: paths are built only for members that hold members, and for violations.
 */
export function requestViolations(request: unknown): FieldViolation[] {
  const found: FieldViolation[] = [];
  visit(request, '', '', '', found);
  return found;
}

/** Checks `value`, of proto field `field`, member `key` of the value at `parent`. */
function visit(value: unknown, field: string, parent: string, key: string | number, found: FieldViolation[]): void {
  switch (typeof value) {
    case 'string': {
      const max = LONG_STRING_FIELDS[field] ?? MAX_STRING_CHARS;
      if (value.length > max) found.push({ field: pathOf(parent, key), description: `must be at most ${max} characters, was ${value.length}` });
      else if (value.includes('\0')) found.push({ field: pathOf(parent, key), description: 'must not contain NUL (U+0000)' });
      else if (field === 'request_id' && value !== '' && !isUuid(value)) found.push({ field: pathOf(parent, key), description: 'must be a UUID (AIP-155), or empty' });
      return;
    }
    case 'number':
      if (!Number.isFinite(value)) found.push({ field: pathOf(parent, key), description: 'must be a finite number' });
      return;
    case 'object':
      break;
    default:
      return;
  }
  if (value === null || value instanceof Uint8Array) return;
  if (value instanceof Date) {
    const ms = value.getTime();
    if (!(ms >= MIN_TIMESTAMP_MS && ms <= MAX_TIMESTAMP_MS)) found.push({ field: pathOf(parent, key), description: 'must be a Timestamp between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z' });
    return;
  }
  const at = pathOf(parent, key);
  if (Array.isArray(value)) {
    value.forEach((item, i) => visit(item, field, at, i, found));
    return;
  }
  const record = value as Record<string, unknown>;
  // A oneof (ts-proto `unions-value`): { $case: member, value }, named by its member.
  if (typeof record.$case === 'string') {
    const member = protoName(record.$case);
    visit(record.value, member, at, member, found);
    return;
  }
  for (const property in record) {
    const name = protoName(property);
    visit(record[property], name, at, name, found);
  }
}

/**
 * Throws INVALID_ARGUMENT for a request that failed to decode (reason MALFORMED_MESSAGE) or breaks
 * a limit above (reason INVALID_ARGUMENT, every violation listed).
 */
export function checkRequest(request: unknown): void {
  if (request instanceof UndecodableRequest) throw new DomainError('MALFORMED_MESSAGE', request.message, request.violations);
  const violations = requestViolations(request);
  if (violations.length > 0) throw new DomainError('INVALID_ARGUMENT', violations.map((v) => `${v.field}: ${v.description}`).join('; '), violations);
}

/** Whether `value` is one of InstallFailure's values (protobuf enums are open: any int32 decodes). */
export const isInstallFailure = (value: number): boolean => value >= 0 && value in InstallFailure;
