import { DomainError } from '@titanbot/service-kit/errors';
import { UnknownDataKeyError } from '@titanbot/service-kit/secrets/data-keys';
import { SecretStoreUnavailableError } from '@titanbot/service-kit/secrets/secret-store';
import type { ReadRuntime } from './runtime.js';

/**
 * Opens a value sealed in the read model (an account's Google password, a device's SSH private
 * key) for its owning daemon, learning data keys rotated meanwhile. `context` is the column,
 * e.g. `accounts.google_password`. Errors: UNAVAILABLE DATA_KEY_UNAVAILABLE (the key is not
 * loaded and the secret store cannot give it now).
 */
export async function unseal(rt: ReadRuntime, sealed: string, context: string): Promise<string> {
  try {
    return rt.keyring.open(sealed, context);
  } catch (err) {
    if (!(err instanceof UnknownDataKeyError)) throw err;
  }
  try {
    await rt.keyring.refresh();
    return rt.keyring.open(sealed, context);
  } catch (err) {
    if (err instanceof UnknownDataKeyError || err instanceof SecretStoreUnavailableError) {
      throw new DomainError('DATA_KEY_UNAVAILABLE', 'the data key for this secret is not available yet; retry');
    }
    throw err;
  }
}
