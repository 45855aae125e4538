import { DomainError } from '@titanbot/service-kit/errors';
import type { DaemonPrincipal, ReadRuntime } from '../access/runtime.js';

/**
 * The scope a request names (its logical id; none = the global scope), if the caller's device may
 * read it. Errors: PERMISSION_DENIED SCOPE_NOT_OF_DEVICE.
 */
export function scopeFor(rt: ReadRuntime, logicalId: number | undefined, principal: DaemonPrincipal): number {
  const scope = rt.model.scopeFor(principal.token.deviceUuid, logicalId);
  if (scope === undefined) throw new DomainError('SCOPE_NOT_OF_DEVICE', `logical_id ${logicalId} is not an account of this device`);
  return scope;
}
