import type { Metadata, ServiceDefinition } from '@grpc/grpc-js';
import type { MikroORM } from '@mikro-orm/postgresql';
import { AccountServiceService } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { AdminTokenServiceService } from '@titanbot/contracts/titanbot/admin/v1/admin_token_service';
import { DaemonTokenServiceService } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { DataKeyServiceService } from '@titanbot/contracts/titanbot/admin/v1/data_key_service';
import { DeviceServiceService } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { EmpireDateServiceService } from '@titanbot/contracts/titanbot/admin/v1/empire_date_service';
import { HabitServiceService } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { LegionServiceService } from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import { LogServiceService } from '@titanbot/contracts/titanbot/admin/v1/log_service';
import { ChangeFeedServiceService } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { findUsableDaemonToken } from '../app/daemon-tokens.js';
import type { DomainSettings } from '../app/context.js';
import { DomainError } from '../domain/errors.js';
import type { RotatingCredential } from '../secrets/rotating-credential.js';

export type PrincipalKind = 'admin' | 'reader' | 'daemon';

/** Who is calling, once the `x-api-key` credential is recognised. */
export type Principal = { kind: 'admin' } | { kind: 'reader' } | { kind: 'daemon'; deviceUuid: string; tokenUuid: string };

/**
 * The one table of who may call what on the write service (DOMAIN.md "Who may call what"):
 * the admin token the admin API, the reader credential the feed API. Daemon tokens are for the
 * read service only, so here they are recognised (to answer PERMISSION_DENIED) but never allowed.
 */
export const WRITE_SERVICE_POLICY: readonly { service: ServiceDefinition; principal: PrincipalKind }[] = [
  { service: DeviceServiceService, principal: 'admin' },
  { service: AccountServiceService, principal: 'admin' },
  { service: LegionServiceService, principal: 'admin' },
  { service: HabitServiceService, principal: 'admin' },
  { service: EmpireDateServiceService, principal: 'admin' },
  { service: DaemonTokenServiceService, principal: 'admin' },
  { service: LogServiceService, principal: 'admin' },
  { service: AdminTokenServiceService, principal: 'admin' },
  { service: DataKeyServiceService, principal: 'admin' },
  { service: ChangeFeedServiceService, principal: 'reader' },
];

const PRINCIPAL_OF_PATH = new Map(
  WRITE_SERVICE_POLICY.flatMap(({ service, principal }) => Object.values(service).map((m) => [m.path, principal] as const)),
);

/** Checks `x-api-key` against the credentials; answers in the order DOMAIN.md requires. */
export class Authenticator {
  constructor(
    private readonly admin: RotatingCredential,
    private readonly reader: RotatingCredential,
    private readonly orm: MikroORM,
    private readonly settings: DomainSettings,
  ) {}

  /**
   * The caller of `path`. Errors: DomainError unauthenticated (no key, or not a current
   * credential: checked before anything else), permission_denied (valid credential, wrong API).
   */
  async authorize(metadata: Metadata, path: string, now: Date): Promise<Principal> {
    const key = metadata.get('x-api-key')[0];
    const principal = typeof key === 'string' && key !== '' ? await this.identify(key, now) : null;
    if (!principal) throw new DomainError('unauthenticated', 'UNAUTHENTICATED', 'missing, unknown, expired or revoked credential');
    if (PRINCIPAL_OF_PATH.get(path) !== principal.kind) {
      throw new DomainError('permission_denied', 'PERMISSION_DENIED', `a ${principal.kind} credential may not call ${path}`);
    }
    return principal;
  }

  /** Cached comparisons first; a store refresh (rate-limited) only when nothing matched. */
  private async identify(key: string, now: Date): Promise<Principal | null> {
    if (this.admin.matches(key)) return { kind: 'admin' };
    if (this.reader.matches(key)) return { kind: 'reader' };
    const token = await findUsableDaemonToken({ em: this.orm.em.fork(), now, settings: this.settings }, key);
    if (token) return { kind: 'daemon', deviceUuid: token.deviceUuid, tokenUuid: token.uuid };
    if (await this.admin.verify(key)) return { kind: 'admin' };
    if (await this.reader.verify(key)) return { kind: 'reader' };
    return null;
  }
}

/** Every method path of the write service with its principal; tests walk it. */
export const writeServicePaths = (): [string, PrincipalKind][] => [...PRINCIPAL_OF_PATH.entries()];
