import { DomainError } from '@titanbot/service-kit/errors';
import { GLOBAL_SCOPE } from '../store/versions.js';
import type { DaemonPrincipal, ReadRuntime } from './runtime.js';

/**
 * The scope a request names (its logical id; none = the global scope), if the caller's device may
 * read it. Errors: PERMISSION_DENIED SCOPE_NOT_OF_DEVICE.
 */
export function scopeFor(rt: ReadRuntime, logicalId: number | undefined, principal: DaemonPrincipal): number {
  if (logicalId === undefined) return GLOBAL_SCOPE;
  if (!rt.model.deviceHasAccount(principal.token.deviceUuid, logicalId)) {
    throw new DomainError('SCOPE_NOT_OF_DEVICE', `logical_id ${logicalId} is not an account of this device`);
  }
  return logicalId;
}
