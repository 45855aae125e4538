import type { Logger } from 'pino';
import { FileSecretStore } from './file-secret-store.js';
import type { SecretStore } from './secret-store.js';
import { VaultSecretStore } from './vault-secret-store.js';

export type { SecretStore };

/**
 * Where secrets live: SECRET_STORE `vault` (Vault KV v2 at VAULT_ADDR) or `file` (0600 files in
 * SECRETS_DIR); unset means Vault when VAULT_ADDR is set, else the file store with a warning.
 */
export interface SecretStoreSettings {
  SECRET_STORE?: 'vault' | 'file' | undefined;
  VAULT_ADDR?: string | undefined;
  VAULT_TOKEN?: string | undefined;
  VAULT_MOUNT: string;
  VAULT_PATH_PREFIX: string;
  SECRETS_DIR: string;
}

/**
 * Opens the configured secret store; warns when the file store stands in for Vault without
 * SECRET_STORE=file saying so (`npm start` says so, and says it once in its banner).
 */
export function openSecretStore(settings: SecretStoreSettings, logger: Logger): SecretStore {
  if (settings.SECRET_STORE !== 'file' && settings.VAULT_ADDR) {
    return new VaultSecretStore({ endpoint: settings.VAULT_ADDR, token: settings.VAULT_TOKEN ?? '', mount: settings.VAULT_MOUNT, prefix: settings.VAULT_PATH_PREFIX });
  }
  if (settings.SECRET_STORE !== 'file') logger.warn({ dir: settings.SECRETS_DIR }, "VAULT_ADDR is not set: a file secret store plays Vault's part (SECRET_STORE=file says that is intended)");
  return new FileSecretStore(settings.SECRETS_DIR);
}
