import type { DescMessage, DescMethodUnary, DescService } from '@bufbuild/protobuf';
import { ConnectError, createClient, type ConnectRouter, type HandlerContext, type Transport } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
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
import { clientTlsOptions, type ClientTlsSettings } from '@titanbot/service-kit/tls';

/**
 * The write service's admin API as `proto/` defines it, every service the console forwards. A new
 * method of these services is forwarded without a change here; a new admin service is one line.
 */
export const ADMIN_SERVICES: readonly DescService[] = [
  FleetService,
  DeviceService,
  AccountService,
  HabitService,
  RolloutService,
  LegionService,
  EmpireDateService,
  DaemonTokenService,
  LogService,
  AuditService,
  DataKeyService,
  AdminTokenService,
];

/**
 * Fields the console never sends to a browser, whatever the operator's roles: an account's Google
 * password and a device's SSH private key are written through the console but never shown back
 * (the write service already withholds them from every role but `admin`).
 */
const SECRET_FIELDS = new Set(['titanbot.admin.v1.Account.google_password', 'titanbot.admin.v1.Ssh.private_key']);

/** Whether a message of `schema` can hold a secret field, at any depth. */
function holdsSecrets(schema: DescMessage, seen = new Set<string>()): boolean {
  if (seen.has(schema.typeName)) return false;
  seen.add(schema.typeName);
  return schema.fields.some((f) => SECRET_FIELDS.has(`${schema.typeName}.${f.name}`) || ((f.fieldKind === 'message' || (f.fieldKind === 'list' && f.listKind === 'message')) && holdsSecrets(f.message, seen)));
}

/** Empties the SECRET_FIELDS of `message` (of `schema`) and of the messages it holds, in place. */
function emptySecrets(schema: DescMessage, message: Record<string, unknown>): void {
  for (const f of schema.fields) {
    const value = message[f.localName];
    if (SECRET_FIELDS.has(`${schema.typeName}.${f.name}`)) message[f.localName] = '';
    else if (f.fieldKind === 'message' && value) emptySecrets(f.message, value as Record<string, unknown>);
    else if (f.fieldKind === 'list' && f.listKind === 'message') for (const item of value as Record<string, unknown>[]) emptySecrets(f.message, item);
  }
}

/** `/package.Service/Method`, the path gRPC, Connect and the admin API's role table all use. */
export const methodPath = (method: DescMethodUnary): string => `/${method.parent.typeName}/${method.name}`;

/**
 * A gRPC (HTTP/2) transport to the write service at `address` (host:port): TLS verified with the
 * given CA and, for mutual TLS, the console's client certificate; plaintext without `tls`.
 */
export function writeServiceTransport(address: string, tls: ClientTlsSettings | undefined): Transport {
  return createGrpcTransport({ baseUrl: `${tls ? 'https' : 'http'}://${address}`, ...(tls ? { nodeOptions: clientTlsOptions(tls) } : {}) });
}

/**
 * Connect routes for every admin method, each forwarding the request message as it came to the
 * write service with the operator's own access token (`authorization: Bearer`), which `accessToken`
 * gives for the call's session or refuses (UNAUTHENTICATED, PERMISSION_DENIED for another origin).
 * Roles, validation, audit and errors are the write service's own: its status, message and
 * details (ErrorInfo, BadRequest, RetryInfo) reach the browser unchanged; its answers reach it
 * without their SECRET_FIELDS. The call's deadline is the browser's, else `defaultTimeoutMs`; a
 * browser that goes away cancels the forwarded call.
 */
export function adminRoutes(transport: Transport, accessToken: (ctx: HandlerContext) => Promise<string>, defaultTimeoutMs: number): (router: ConnectRouter) => void {
  return (router) => {
    for (const service of ADMIN_SERVICES) {
      const upstream = createClient(service, transport) as unknown as Record<string, (req: unknown, options: object) => Promise<unknown>>;
      const handlers: Record<string, (req: unknown, ctx: HandlerContext) => Promise<unknown>> = {};
      for (const method of service.methods) {
        if (method.methodKind !== 'unary') throw new Error(`${methodPath(method as DescMethodUnary)}: only unary methods are forwarded`);
        const secrets = holdsSecrets(method.output);
        handlers[method.localName] = async (req, ctx) => {
          const authorization = `Bearer ${await accessToken(ctx)}`;
          try {
            const response = await upstream[method.localName]!(req, { headers: { authorization }, signal: ctx.signal, timeoutMs: ctx.timeoutMs() ?? defaultTimeoutMs });
            if (secrets) emptySecrets(method.output, response as Record<string, unknown>);
            return response;
          } catch (err) {
            // The write service's status, message and details; not its response headers and
            // trailers (gRPC's own), which would be sent to the browser as Connect headers.
            const e = ConnectError.from(err);
            // Details as received (type URL and bytes) are sent on as they are.
            throw new ConnectError(e.rawMessage, e.code, undefined, e.details as ConstructorParameters<typeof ConnectError>[3]);
          }
        };
      }
      router.service(service, handlers as never);
    }
  };
}
