import type { ServiceDefinition } from '@grpc/grpc-js';
import { AccountServiceService } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { AdminTokenServiceService } from '@titanbot/contracts/titanbot/admin/v1/admin_token_service';
import { AuditServiceService } from '@titanbot/contracts/titanbot/admin/v1/audit_service';
import { DaemonTokenServiceService } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { DataKeyServiceService } from '@titanbot/contracts/titanbot/admin/v1/data_key_service';
import { DeviceServiceService } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { EmpireDateServiceService } from '@titanbot/contracts/titanbot/admin/v1/empire_date_service';
import { HabitServiceService } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { RolloutServiceService } from '@titanbot/contracts/titanbot/admin/v1/rollout_service';
import { LegionServiceService } from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import { FleetServiceService } from '@titanbot/contracts/titanbot/admin/v1/fleet_service';
import { LogServiceService } from '@titanbot/contracts/titanbot/admin/v1/log_service';
import { DaemonServiceService } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { ChangeFeedServiceService } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';

/** The kinds of credential (`x-api-key`): the admin token, the reader credential, a daemon token. */
export type PrincipalKind = 'admin' | 'reader' | 'daemon';

/**
 * The one table of who may call what (docs/domain.md "Who may call what"; issue "Credentials"): the
 * admin token the admin API, the reader credential the feed API (read replicas), a daemon token
 * the daemon API, for its own device only. Every other pairing is refused: UNAUTHENTICATED for
 * a credential the serving process does not recognise (the read service knows only daemon
 * tokens), PERMISSION_DENIED for a recognised one on the wrong API.
 */
export const POLICY: readonly { service: ServiceDefinition; server: 'write' | 'read'; principal: PrincipalKind }[] = [
  { service: DeviceServiceService, server: 'write', principal: 'admin' },
  { service: AccountServiceService, server: 'write', principal: 'admin' },
  { service: LegionServiceService, server: 'write', principal: 'admin' },
  { service: HabitServiceService, server: 'write', principal: 'admin' },
  { service: RolloutServiceService, server: 'write', principal: 'admin' },
  { service: EmpireDateServiceService, server: 'write', principal: 'admin' },
  { service: DaemonTokenServiceService, server: 'write', principal: 'admin' },
  { service: LogServiceService, server: 'write', principal: 'admin' },
  { service: FleetServiceService, server: 'write', principal: 'admin' },
  { service: AuditServiceService, server: 'write', principal: 'admin' },
  { service: AdminTokenServiceService, server: 'write', principal: 'admin' },
  { service: DataKeyServiceService, server: 'write', principal: 'admin' },
  { service: ChangeFeedServiceService, server: 'write', principal: 'reader' },
  { service: DaemonServiceService, server: 'read', principal: 'daemon' },
];

const PRINCIPAL_OF_PATH = new Map(POLICY.flatMap(({ service, principal }) => Object.values(service).map((m) => [m.path, principal] as const)));

/** The principal allowed to call method `path` (`/package.Service/Method`); undefined for unknown paths. */
export const principalOf = (path: string): PrincipalKind | undefined => PRINCIPAL_OF_PATH.get(path);

/** What an operator signed in through OAuth 2.0 may be (the admin API's roles). */
export type OperatorRole = 'admin' | 'viewer' | 'token-issuer';
const ROLES: readonly OperatorRole[] = ['admin', 'viewer', 'token-issuer'];

/**
 * The roles an access token's claims give: the names in `rolesClaim` (a list, or a space-separated
 * string) and `scope` entries `titanbot.<role>`. Unknown names are ignored.
 */
export function operatorRoles(claims: Record<string, unknown>, rolesClaim: string): OperatorRole[] {
  const value = claims[rolesClaim];
  const named = Array.isArray(value) ? value.map(String) : typeof value === 'string' ? value.split(' ') : [];
  const scoped = typeof claims.scope === 'string' ? claims.scope.split(' ').filter((s) => s.startsWith('titanbot.')).map((s) => s.slice('titanbot.'.length)) : [];
  return ROLES.filter((r) => named.includes(r) || scoped.includes(r));
}

/** The services a token-issuer may call, whole. */
const TOKEN_ISSUER_SERVICES = new Set<string>(Object.values(DaemonTokenServiceService).map((m) => m.path));

/**
 * The admin API by role, the same table for every operator: `admin` everything, `viewer` the
 * Get and List methods only, `token-issuer` the daemon-token service. Other APIs: no role.
 */
export function operatorMayCall(roles: readonly OperatorRole[], path: string): boolean {
  if (principalOf(path) !== 'admin') return false;
  if (roles.includes('admin')) return true;
  const method = path.slice(path.lastIndexOf('/') + 1);
  if (roles.includes('viewer') && /^(Get|List)[A-Z]/.test(method)) return true;
  return roles.includes('token-issuer') && TOKEN_ISSUER_SERVICES.has(path);
}
