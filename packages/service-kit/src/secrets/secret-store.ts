/** A versioned secret document store with check-and-set writes (Vault KV v2 semantics). */
export interface SecretStore {
  /**
   * Human-readable location for logs, never containing a secret, e.g.
   * "Vault KV v2 http://127.0.0.1:8200 secret/titanbot/admin-token" or "file .data/secrets/admin-token.json".
   */
  describe(name: string): string;
  /** Latest version of `name`, or null when it was never written. Throws SecretStoreUnavailableError when the backend cannot be reached. */
  read(name: string): Promise<{ data: Record<string, string>; version: number } | null>;
  /**
   * Writes a new version only if the latest version is `expectedVersion` (0 = must not exist yet).
   * Returns the new version number (versions start at 1 and increase by 1). Throws CasConflictError when
   * another writer got there first, SecretStoreUnavailableError when unreachable.
   */
  write(name: string, data: Record<string, string>, expectedVersion: number): Promise<number>;
}

/** The latest version is not the one the writer expected: someone else wrote in between. */
export class CasConflictError extends Error {
  override name = 'CasConflictError';
}

/** The backend could not be reached (network, timeout, 5xx, filesystem); `cause` says why. */
export class SecretStoreUnavailableError extends Error {
  override name = 'SecretStoreUnavailableError';
}

/**
 * Throws unless `name` is a plain identifier (letters, digits, `_`, `-`). Names become file names and
 * URL path segments, so this keeps them from escaping the store's directory or prefix.
 */
export function assertSecretName(name: string): void {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`invalid secret name ${JSON.stringify(name)}`);
}
