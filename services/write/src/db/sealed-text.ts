import { Type } from '@mikro-orm/core';
import type { DataKeyring } from '@titanbot/service-kit/secrets/data-keys';

/**
 * A text column stored sealed (AES-256-GCM-SIV, `tbenc2.<keyId>.…`): entities hold the plaintext,
 * PostgreSQL, the change feed and every read replica only the sealed form. `context` (the
 * column, e.g. `accounts.google_password`) is authenticated, so a value copied into another
 * column does not open. Without a keyring (migrations, tooling) any use throws.
 */
export class SealedText extends Type<string, string> {
  /**
   * A closure, not a field: MikroORM deep-copies metadata (custom types included) at discovery,
   * and a copied keyring would keep the keys of that moment and never learn rotated ones.
   */
  private readonly ring: () => DataKeyring;

  constructor(
    keyring: DataKeyring | undefined,
    private readonly context: string,
  ) {
    super();
    this.ring = () => {
      if (!keyring) throw new Error(`${context} is sealed: open the ORM with a data keyring`);
      return keyring;
    };
  }

  override convertToDatabaseValue(value: string): string {
    return this.ring().seal(value, this.context);
  }

  override convertToJSValue(value: string): string {
    return this.ring().open(value, this.context);
  }

  // The ORM compares sealed values to find changes; sealing is deterministic, so equal plaintexts compare equal.
  override compareAsType(): string {
    return 'string';
  }

  override getColumnType(): string {
    return 'text';
  }
}
