import vault from 'node-vault';
import { assertSecretName, CasConflictError, type SecretStore, SecretStoreUnavailableError } from './secret-store.js';

export interface VaultSecretStoreOptions {
  /** Vault base URL, e.g. `http://127.0.0.1:8200`. */
  endpoint: string;
  token: string;
  /** KV v2 mount point; default `secret`. */
  mount?: string;
  /** Folder under the mount holding this application's secrets; default `titanbot`. */
  prefix?: string;
  /** Per-request timeout in milliseconds; default 2000. */
  timeoutMs?: number;
}

/** node-vault's ApiResponseError: Vault answered with a status other than 200/204. */
interface VaultResponseError {
  response: { statusCode: number; body?: { errors?: unknown } };
}

/**
 * Secrets at `<mount>/data/<prefix>/<name>` in a Vault KV v2 engine. Versions and check-and-set are
 * Vault's own (`options.cas`), so any number of replicas can share one secret.
 */
export class VaultSecretStore implements SecretStore {
  private readonly client: vault.client;
  private readonly endpoint: string;
  private readonly mount: string;
  private readonly prefix: string;

  constructor({ endpoint, token, mount = 'secret', prefix = 'titanbot', timeoutMs = 2_000 }: VaultSecretStoreOptions) {
    this.endpoint = endpoint;
    this.mount = mount;
    this.prefix = prefix;
    this.client = vault({
      endpoint,
      token,
      requestOptions: { timeout: timeoutMs },
      // node-vault's debug channel (DEBUG=node-vault) prints every written body, i.e. the secrets.
      debug: () => {},
    });
  }

  describe(name: string): string {
    return `Vault KV v2 ${this.endpoint} ${this.mount}/${this.prefix}/${name}`;
  }

  async read(name: string): Promise<{ data: Record<string, string>; version: number } | null> {
    assertSecretName(name);
    let body: { data?: { data?: Record<string, string>; metadata?: { version?: number } } };
    try {
      body = await this.client.read(this.path(name));
    } catch (err) {
      if (isVaultResponse(err) && err.response.statusCode === 404) return null;
      throw this.translate(name, err);
    }
    const data = body.data?.data;
    const version = body.data?.metadata?.version;
    if (typeof data !== 'object' || data === null || typeof version !== 'number') {
      throw new Error(`${this.describe(name)}: unexpected KV v2 read response`);
    }
    return { data, version };
  }

  async write(name: string, data: Record<string, string>, expectedVersion: number): Promise<number> {
    assertSecretName(name);
    let body: { data?: { version?: number } };
    try {
      body = await this.client.write(this.path(name), { options: { cas: expectedVersion }, data });
    } catch (err) {
      throw this.translate(name, err);
    }
    const version = body.data?.version;
    if (typeof version !== 'number') throw new Error(`${this.describe(name)}: unexpected KV v2 write response`);
    return version;
  }

  private path(name: string): string {
    return `${this.mount}/data/${this.prefix}/${name}`;
  }

  /** Maps a node-vault failure to the port's errors. */
  private translate(name: string, err: unknown): Error {
    const where = this.describe(name);
    if (!isVaultResponse(err)) {
      // A network failure (refused, reset, timeout). The axios error is not kept as the cause: its
      // `config` holds the X-Vault-Token header and the request body, and would leak when logged.
      const { message, code } = err as { message?: string; code?: string };
      const cause = Object.assign(new Error(message), { code });
      return new SecretStoreUnavailableError(`${where} unreachable: ${message}`, { cause });
    }
    const { statusCode, body } = err.response;
    const errors = Array.isArray(body?.errors) ? body.errors.join('; ') : '';
    if (statusCode === 400 && errors.includes('check-and-set parameter did not match the current version')) {
      return new CasConflictError(`${where}: another writer changed the secret first`);
    }
    // 429 is rate limiting, 5xx covers sealed, standby and internal errors: all "try again later".
    if (statusCode === 429 || statusCode >= 500) {
      return new SecretStoreUnavailableError(`${where} answered ${statusCode}: ${errors}`, { cause: err });
    }
    return new Error(`${where} answered ${statusCode}: ${errors}`);
  }
}

function isVaultResponse(err: unknown): err is VaultResponseError {
  return typeof (err as Partial<VaultResponseError> | undefined)?.response?.statusCode === 'number';
}
