import { createHmac, timingSafeEqual } from 'node:crypto';
import { UnknownDataKeyError, type DataKeyring } from '@titanbot/service-kit/secrets/data-keys';

/** The HKDF purpose of the signing key (DataKeyring.derivedKey): a key of its own, not the data key. */
const PURPOSE = 'export-url';

/** A signed URL of one payload and the instant it stops being accepted (ms since the epoch). */
export interface SignedExportUrl {
  url: string;
  expireTimeMs: number;
}

/** Why a URL's signature is refused (403); `undefined` from `verify` = accepted. */
export type UrlRefusal = 'missing' | 'expired' | 'forged';

/**
 * Signed URLs of the replica's content-addressed downloads (`/exports/<sha256>`,
 * `/deltas/<base-sha256>/<sha256>`). The query string carries `expires` (Unix seconds), `key` (the
 * data key id) and `signature`: base64url HMAC-SHA256 of `<path>\n<expires>\n<key>` under a key
 * HKDF-derived from that data key (DataKeyring.derivedKey). Every replica shares the data keys, so
 * a URL one signs is accepted by all, and a key rotated by RotateDataKey signs new URLs while URLs
 * under older keys stay valid until they expire. Only the path is signed, never the host: a CDN
 * or proxy in front may be reached under any name. Parameters travel in the query string so that
 * a cache can leave them out of its key (docs/architecture.md, "Downloads through a CDN").
 */
export class ExportUrlSigner {
  /**
   * @param baseUrl EXPORT_PUBLIC_BASE_URL, without a trailing slash: what daemons fetch from (a CDN,
   *   a proxy, or this replica's EXPORT_HTTP_ADDR); a path in it must be stripped before the replica.
   * @param ttlMs how long a URL stays valid (EXPORT_URL_TTL, ms).
   * @param clock ms since the epoch.
   */
  constructor(
    private readonly keyring: DataKeyring,
    private readonly baseUrl: string,
    private readonly ttlMs: number,
    private readonly clock: () => number,
  ) {}

  /** Whether a data key is loaded to sign with (until then DownloadExport sends chunks). */
  get ready(): boolean {
    return this.keyring.currentKeyId !== '';
  }

  /** A URL of `path` valid for the TTL. Throws UnknownDataKeyError while no data key is loaded (`ready`). */
  sign(path: string): SignedExportUrl {
    const keyId = this.keyring.currentKeyId;
    const expires = Math.ceil((this.clock() + this.ttlMs) / 1000);
    const query = new URLSearchParams({ expires: String(expires), key: keyId, signature: this.mac(path, expires, keyId) });
    return { url: `${this.baseUrl}${path}?${query.toString()}`, expireTimeMs: expires * 1000 };
  }

  /**
   * Whether `query` signs `path` now. A key id this replica does not know is looked up once in the
   * secret store (it may have been rotated since start-up). Throws SecretStoreUnavailableError when
   * that lookup cannot reach the store.
   */
  async verify(path: string, query: URLSearchParams): Promise<UrlRefusal | undefined> {
    const [expiresText, keyId, signature] = [query.get('expires'), query.get('key'), query.get('signature')];
    if (!expiresText || !keyId || !signature) return 'missing';
    if (!/^\d{1,12}$/.test(expiresText)) return 'forged';
    const expires = Number(expiresText);
    let expected: string;
    try {
      expected = this.mac(path, expires, keyId);
    } catch (err) {
      if (!(err instanceof UnknownDataKeyError)) throw err;
      await this.keyring.refresh();
      try {
        expected = this.mac(path, expires, keyId);
      } catch (again) {
        if (again instanceof UnknownDataKeyError) return 'forged';
        throw again;
      }
    }
    const [given, wanted] = [Buffer.from(signature), Buffer.from(expected)];
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) return 'forged';
    // Checked after the signature, so that an expired answer is never given for a forged URL.
    return expires * 1000 <= this.clock() ? 'expired' : undefined;
  }

  private mac(path: string, expires: number, keyId: string): string {
    return createHmac('sha256', this.keyring.derivedKey(PURPOSE, keyId)).update(`${path}\n${expires}\n${keyId}`).digest('base64url');
  }
}
