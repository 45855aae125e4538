import type { Logger } from 'pino';
import { FileSecretStore } from './file-secret-store.js';
import type { SecretStore } from './secret-store.js';
import { VaultSecretStore } from './vault-secret-store.js';

export type { SecretStore };

/** Where secrets live: Vault KV v2 when VAULT_ADDR is set, else 0600 files in SECRETS_DIR. */
export interface SecretStoreSettings {
  VAULT_ADDR?: string | undefined;
  VAULT_TOKEN?: string | undefined;
  VAULT_MOUNT: string;
  VAULT_PATH_PREFIX: string;
  SECRETS_DIR: string;
}

/** Opens the configured secret store; warns when the file store stands in for Vault. */
export function openSecretStore(settings: SecretStoreSettings, logger: Logger): SecretStore {
  if (settings.VAULT_ADDR) {
    return new VaultSecretStore({ endpoint: settings.VAULT_ADDR, token: settings.VAULT_TOKEN ?? '', mount: settings.VAULT_MOUNT, prefix: settings.VAULT_PATH_PREFIX });
  }
  logger.warn({ dir: settings.SECRETS_DIR }, "VAULT_ADDR is not set: a file secret store plays Vault's part");
  return new FileSecretStore(settings.SECRETS_DIR);
}
