import { status, type ServiceError } from '@grpc/grpc-js';
import { BadRequest, ErrorInfo } from '@titanbot/contracts/google/rpc/error_details';
import { Status } from '@titanbot/contracts/google/rpc/status';

/** Whether `err` is a failed gRPC call (as opposed to a local failure such as an unreadable file). */
export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && 'metadata' in err;
}

/**
 * The lines titanctl prints for a failed call, without stack traces:
 * `titanctl: <CODE>: <message>` (grpc-js's empty "Resolution note:" dropped), then
 * `  <field>: <description>` per BadRequest field violation, then `  reason: <ErrorInfo reason>`,
 * then for UNAVAILABLE / DEADLINE_EXCEEDED a hint naming `server` and, when the call was
 * plaintext (`tls` false), that the server may speak TLS.
 */
export function describeServiceError(err: ServiceError, server: string, tls: boolean): string[] {
  const details = (err.details || err.message).replace(/\s*Resolution note:\s*$/, '');
  const lines = [`titanctl: ${status[err.code] ?? err.code}: ${details}`];
  const bin = err.metadata?.get('grpc-status-details-bin')[0];
  if (bin instanceof Buffer) {
    let reason = '';
    for (const any of Status.decode(bin).details) {
      if (any.typeUrl.endsWith('google.rpc.ErrorInfo')) reason = ErrorInfo.decode(any.value).reason;
      if (any.typeUrl.endsWith('google.rpc.BadRequest')) {
        for (const v of BadRequest.decode(any.value).fieldViolations) lines.push(`  ${v.field}: ${v.description}`);
      }
    }
    if (reason) lines.push(`  reason: ${reason}`);
  }
  if (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED) {
    lines.push(`  is the write service running at ${server}? Check --server (or TITANBOT_SERVER), or start it with \`npm start\`.`);
    if (!tls) lines.push('  if it serves TLS (TLS_CERT_FILE), connect with --ca-file PATH (or --tls for the system\'s trust store).');
  }
  return lines;
}
