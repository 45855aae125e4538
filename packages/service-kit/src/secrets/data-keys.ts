import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { gcmsiv } from '@noble/ciphers/aes';
import type { Logger } from 'pino';
import { CasConflictError, type SecretStore } from './secret-store.js';

/** The secret holding the data keys: `current` names one; `key.<id>` fields hold base64 keys. */
const SECRET_NAME = 'data-key';
/** The sealed-value format written now: AES-256-GCM-SIV (RFC 8452). */
const FORMAT = 'tbenc2';
/** Read only (RotateDataKey re-seals it): AES-256-GCM with an HMAC-derived synthetic IV. */
const LEGACY_FORMAT = 'tbenc1';
/**
 * GCM-SIV's nonce. Sealing must be deterministic (the ORM tells a changed secret from an unchanged
 * one by comparing stored values), and GCM-SIV is built for a repeated nonce: it then reveals only
 * whether two plaintexts with the same associated data (key id and column) are equal.
 */
const NONCE = new Uint8Array(12);
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** A sealed value names a key this keyring does not (yet) hold: refresh, then retry. */
export class UnknownDataKeyError extends Error {
  constructor(readonly keyId: string) {
    super(`data key ${keyId} is not known to this process`);
    this.name = 'UnknownDataKeyError';
  }
}

/**
 * Encryption of secrets at rest: AES-256-GCM-SIV (RFC 8452, a nonce-misuse-resistant AEAD, from
 * `@noble/ciphers`) under a data key kept in the secret store. A sealed value is
 * `tbenc2.<keyId>.<base64url(ciphertext|tag)>`: the key id lets keys rotate while old values stay
 * readable, and `context` (e.g. `accounts.google_password`) is authenticated data, so a value moved
 * to another column fails to open. Sealing is deterministic (see NONCE). Keys only ever get added;
 * `current` is the one new values are sealed with. Values of the earlier `tbenc1` format (AES-GCM
 * with a synthetic IV) still open, and RotateDataKey re-seals them as `tbenc2`.
 */
export class DataKeyring {
  private keys = new Map<string, Buffer>();
  private currentId = '';
  private storeVersion = 0;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly store: SecretStore,
    private readonly logger: Logger,
  ) {}

  /**
   * Loads the keys; with `create`, writes a first key when the store has none (check-and-set, so
   * replicas starting together agree on one). Throws SecretStoreUnavailableError when the store
   * cannot be reached.
   */
  async init(create: boolean): Promise<void> {
    await this.refresh();
    if (this.currentId || !create) return;
    try {
      await this.write(this.withNewKey());
      this.logger.info({ keyId: this.currentId, location: this.store.describe(SECRET_NAME) }, 'data key created');
    } catch (err) {
      if (!(err instanceof CasConflictError)) throw err;
      await this.refresh();
    }
  }

  /** Re-reads the store (single flight: concurrent callers share one read). */
  refresh(): Promise<void> {
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    return this.loading;
  }

  /** Id of the key new values are sealed with; '' before a key exists. */
  get currentKeyId(): string {
    return this.currentId;
  }

  /**
   * Adds a new key and makes it current (check-and-set: a concurrent rotation elsewhere makes
   * this one fail with CasConflictError after refreshing). Returns the new key id.
   */
  async rotate(): Promise<string> {
    try {
      await this.write(this.withNewKey());
    } catch (err) {
      if (err instanceof CasConflictError) await this.refresh();
      throw err;
    }
    this.logger.info({ keyId: this.currentId }, 'data key rotated');
    return this.currentId;
  }

  /** Seals `plaintext` under the current key. Throws Error when no key exists yet. */
  seal(plaintext: string, context: string): string {
    const key = this.keys.get(this.currentId);
    if (!key) throw new Error('no data key: the write service creates one at start-up');
    const body = gcmsiv(key, NONCE, aad(FORMAT, this.currentId, context)).encrypt(Buffer.from(plaintext, 'utf8'));
    return `${FORMAT}.${this.currentId}.${Buffer.from(body).toString('base64url')}`;
  }

  /**
   * Opens a value made by `seal` (either format) with the same `context`. Throws
   * UnknownDataKeyError when its key is not loaded (refresh and retry), Error when it is not a
   * sealed value or fails authentication.
   */
  open(sealed: string, context: string): string {
    const [format, keyId, body] = sealed.split('.');
    if ((format !== FORMAT && format !== LEGACY_FORMAT) || !keyId || body === undefined) throw new Error(`not a sealed ${context} value`);
    const key = this.keys.get(keyId);
    if (!key) throw new UnknownDataKeyError(keyId);
    const bytes = Buffer.from(body, 'base64url');
    if (format === FORMAT) return Buffer.from(gcmsiv(key, NONCE, aad(format, keyId, context)).decrypt(bytes)).toString('utf8');
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(aad(format, keyId, context));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  }

  /**
   * A 32-byte key for `purpose` (e.g. `export-url`), derived by HKDF-SHA256 (RFC 5869) from data
   * key `keyId` (default: the current one): every service that shares the data keys derives the
   * same key, it rotates with them (RotateDataKey), and one purpose's key reveals nothing of the
   * data key or of another purpose's. Throws UnknownDataKeyError when that key is not loaded
   * (refresh, then retry), also before any key exists.
   */
  derivedKey(purpose: string, keyId = this.currentId): Buffer {
    const key = this.keys.get(keyId);
    if (!key) throw new UnknownDataKeyError(keyId);
    return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `titanbot ${purpose}`, KEY_BYTES));
  }

  /** Whether `sealed` is sealed under the current key (RotateDataKey re-seals the others). */
  isCurrent(sealed: string): boolean {
    return sealed.startsWith(`${FORMAT}.${this.currentId}.`);
  }

  /** SQL LIKE pattern matching values sealed under the current key. */
  currentPattern(): string {
    return `${FORMAT}.${this.currentId}.%`;
  }

  private async load(): Promise<void> {
    const stored = await this.store.read(SECRET_NAME);
    if (stored) this.apply(stored.data, stored.version);
  }

  private apply(data: Record<string, string>, version: number): void {
    const keys = new Map<string, Buffer>();
    for (const [field, value] of Object.entries(data)) {
      if (field.startsWith('key.')) keys.set(field.slice(4), Buffer.from(value, 'base64'));
    }
    this.keys = keys;
    this.currentId = data['current'] ?? '';
    this.storeVersion = version;
  }

  private withNewKey(): Record<string, string> {
    const data: Record<string, string> = {};
    for (const [id, key] of this.keys) data[`key.${id}`] = key.toString('base64');
    const id = randomBytes(6).toString('hex');
    data[`key.${id}`] = randomBytes(KEY_BYTES).toString('base64');
    data['current'] = id;
    return data;
  }

  private async write(data: Record<string, string>): Promise<void> {
    this.apply(data, await this.store.write(SECRET_NAME, data, this.storeVersion));
  }
}

/** Associated data of a sealed value: its format, key id and column, so none can be swapped. */
const aad = (format: string, keyId: string, context: string): Buffer => Buffer.from(`${format}.${keyId}.${context}`);
