/**
 * The admin API as the browser calls it: the services of `proto/` over the Connect protocol,
 * through the console (same origin, session cookie). No request shapes are written by hand.
 */
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-web';
import { AccountService } from '@titanbot/contracts/es/titanbot/admin/v1/account_service_pb';
import { AdminTokenService } from '@titanbot/contracts/es/titanbot/admin/v1/admin_token_service_pb';
import { AuditService } from '@titanbot/contracts/es/titanbot/admin/v1/audit_service_pb';
import { DaemonTokenService } from '@titanbot/contracts/es/titanbot/admin/v1/daemon_token_service_pb';
import { DataKeyService } from '@titanbot/contracts/es/titanbot/admin/v1/data_key_service_pb';
import { DeviceService } from '@titanbot/contracts/es/titanbot/admin/v1/device_service_pb';
import { EmpireDateService } from '@titanbot/contracts/es/titanbot/admin/v1/empire_date_service_pb';
import { FleetService } from '@titanbot/contracts/es/titanbot/admin/v1/fleet_service_pb';
import { HabitService } from '@titanbot/contracts/es/titanbot/admin/v1/habit_service_pb';
import { LegionService } from '@titanbot/contracts/es/titanbot/admin/v1/legion_service_pb';
import { LogService } from '@titanbot/contracts/es/titanbot/admin/v1/log_service_pb';
import { RolloutService } from '@titanbot/contracts/es/titanbot/admin/v1/rollout_service_pb';
import { BadRequestSchema, ErrorInfoSchema } from '@titanbot/contracts/es/google/rpc/error_details_pb';

const transport = createConnectTransport({ baseUrl: location.origin });

export const api = {
  fleet: createClient(FleetService, transport),
  devices: createClient(DeviceService, transport),
  accounts: createClient(AccountService, transport),
  legions: createClient(LegionService, transport),
  empireDates: createClient(EmpireDateService, transport),
  habits: createClient(HabitService, transport),
  rollouts: createClient(RolloutService, transport),
  tokens: createClient(DaemonTokenService, transport),
  logs: createClient(LogService, transport),
  audit: createClient(AuditService, transport),
  dataKeys: createClient(DataKeyService, transport),
  adminTokens: createClient(AdminTokenService, transport),
} satisfies Record<string, Client<never>>;

/** Where the console signs an operator in, coming back to the page they were on. */
export const signInUrl = (): string => `/auth/login?return_to=${encodeURIComponent(location.pathname + location.search)}`;

/**
 * What an error from the admin API means to the operator: one sentence, with the write service's
 * reason and field violations when it gave them. UNAUTHENTICATED sends the browser to sign-in when
 * the console's session has ended; while it lives, the write service refused the sign-in itself
 * (a provider or audience it does not trust), which is shown rather than signing in for ever.
 */
export function explain(err: unknown): string {
  const e = ConnectError.from(err);
  if (e.code === Code.Unauthenticated) {
    void fetch('/auth/session').then((res) => res.status === 401 && location.assign(signInUrl()));
    return `Not signed in for the admin API: ${e.rawMessage}`;
  }
  const reason = e.findDetails(ErrorInfoSchema)[0]?.reason;
  const fields = e.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => `${v.field}: ${v.description}`));
  const what = e.code === Code.PermissionDenied ? 'Not allowed for your role' : e.code === Code.Unavailable ? 'The service is unavailable; it will be retried' : 'The request failed';
  return `${what}${reason ? ` (${reason})` : ''}: ${e.rawMessage}${fields.length ? ` — ${fields.join('; ')}` : ''}`;
}
