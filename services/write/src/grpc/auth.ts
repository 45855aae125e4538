import type { Metadata } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { operatorMayCall, principalOf } from '@titanbot/service-kit/policy';
import type { MikroORM } from '@mikro-orm/postgresql';
import { findUsableDaemonToken } from '../app/daemon-tokens.js';
import type { DomainSettings } from '../app/context.js';
import { DomainError } from '../domain/errors.js';
import type { RotatingCredential } from '../secrets/rotating-credential.js';
import type { Operator, OidcVerifier } from './oidc.js';

/** Who is calling, once the `x-api-key` credential or the OAuth 2.0 bearer token is recognised. */
export type Principal =
  | { kind: 'admin' }
  | { kind: 'reader' }
  | { kind: 'daemon'; deviceUuid: string; tokenUuid: string }
  | ({ kind: 'operator' } & Operator);

/**
 * PERMISSION_DENIED for a caller who was identified (a valid credential of the wrong kind, or an
 * operator without the role): it names them, so the audit trail records who was refused.
 */
export class CallerRefused extends DomainError {
  constructor(
    readonly principal: Principal,
    message: string,
  ) {
    super('PERMISSION_DENIED', message);
  }
}

/** How operators sign in besides the admin token (OIDC_* and ADMIN_TOKEN_ENABLED). */
export interface OperatorSignIn {
  /** Verifies `authorization: Bearer <JWT>`; unset = bearer tokens are refused. */
  oidc?: OidcVerifier;
  /** false: the admin token is refused (OAuth 2.0 only). */
  adminTokenEnabled: boolean;
}

/** Checks `x-api-key` or `authorization: Bearer` against the credentials; answers in the order docs/domain.md requires. */
export class Authenticator {
  constructor(
    private readonly admin: RotatingCredential,
    private readonly reader: RotatingCredential,
    private readonly orm: MikroORM,
    private readonly settings: DomainSettings,
    private readonly signIn: OperatorSignIn = { adminTokenEnabled: true },
    /** With mutual TLS (TLS_CLIENT_CA_FILE): whether a peer certificate is one of the replicas'. */
    private readonly readerCertificate?: (peer: PeerCertificate | undefined, now: Date) => boolean,
  ) {}

  /**
   * The caller of `path`. Errors: DomainError unauthenticated (no key, or not a current
   * credential: checked before anything else; with mutual TLS, the reader credential without a
   * replica's client certificate), CallerRefused permission_denied (valid credential, wrong API).
   */
  async authorize(metadata: Metadata, path: string, now: Date, peer?: PeerCertificate): Promise<Principal> {
    const bearer = /^Bearer (\S+)$/i.exec(String(metadata.get('authorization')[0] ?? ''))?.[1];
    if (bearer) return this.authorizeOperator(bearer, path, now);
    const key = metadata.get('x-api-key')[0];
    const principal = typeof key === 'string' && key !== '' ? await this.identify(key, now) : null;
    if (!principal) throw new DomainError('UNAUTHENTICATED', 'missing, unknown, expired or revoked credential');
    if (principal.kind === 'reader' && this.readerCertificate && !this.readerCertificate(peer, now)) {
      throw new DomainError('UNAUTHENTICATED', 'the reader credential is accepted only with a replica client certificate (mutual TLS)');
    }
    if (principalOf(path) !== principal.kind) {
      throw new CallerRefused(principal, `a ${principal.kind} credential may not call ${path}`);
    }
    return principal;
  }

  /**
   * An operator with an OAuth 2.0 access token: allowed by their roles (policy.ts
   * operatorMayCall). Errors: unauthenticated (no OIDC issuer configured, or not a valid token),
   * unavailable IDENTITY_PROVIDER_UNAVAILABLE, CallerRefused permission_denied (no role for `path`).
   */
  private async authorizeOperator(token: string, path: string, now: Date): Promise<Principal> {
    if (!this.signIn.oidc) throw new DomainError('UNAUTHENTICATED', 'missing, unknown, expired or revoked credential');
    const operator = await this.signIn.oidc.verify(token, now);
    const principal: Principal = { kind: 'operator', ...operator };
    if (!operatorMayCall(operator.roles, path)) throw new CallerRefused(principal, `roles [${operator.roles.join(', ')}] may not call ${path}`);
    return principal;
  }

  /** Cached comparisons first; a store refresh (rate-limited) only when nothing matched. */
  private async identify(key: string, now: Date): Promise<Principal | null> {
    const adminEnabled = this.signIn.adminTokenEnabled;
    if (adminEnabled && this.admin.matches(key)) return { kind: 'admin' };
    if (this.reader.matches(key)) return { kind: 'reader' };
    const token = await findUsableDaemonToken({ em: this.orm.em.fork(), now, settings: this.settings }, key);
    if (token) return { kind: 'daemon', deviceUuid: token.deviceUuid, tokenUuid: token.uuid };
    if (adminEnabled && (await this.admin.verify(key))) return { kind: 'admin' };
    if (await this.reader.verify(key)) return { kind: 'reader' };
    return null;
  }
}

