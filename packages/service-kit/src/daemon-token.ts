/** The daemon-token format (docs/domain.md, "Daemon token"), shared by issuer, read replicas and clients. */
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

const PREFIX = 'tbd_';
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** 27 base62 characters carry 160.8 bits. */
const SECRET_CHARS = 27;
/** 62^6 > 2^32: six base62 characters hold a CRC32. */
const CHECKSUM_CHARS = 6;
const TOKEN_LENGTH = PREFIX.length + SECRET_CHARS + CHECKSUM_CHARS;
/** `tbd_` plus 6 characters: enough to recognise a token, useless to guess it. */
export const SHOWN_PREFIX_CHARS = PREFIX.length + 6;

/** `tbd_` + 27 random base62 characters + 6-character base62 CRC32 of what precedes it. */
export function generateDaemonToken(): string {
  let secret = '';
  while (secret.length < SECRET_CHARS) {
    for (const byte of randomBytes(SECRET_CHARS * 2)) {
      // 248 = 62 * 4: rejecting larger bytes keeps every character uniformly likely.
      if (byte < 248 && secret.length < SECRET_CHARS) secret += ALPHABET[byte % 62];
    }
  }
  const body = PREFIX + secret;
  return body + checksum(body);
}

/** Whether `token` has the daemon-token shape and a correct checksum: no lookup needed to reject. */
export function isWellFormedDaemonToken(token: string): boolean {
  if (token.length !== TOKEN_LENGTH || !token.startsWith(PREFIX)) return false;
  const body = token.slice(0, -CHECKSUM_CHARS);
  return checksum(body) === token.slice(-CHECKSUM_CHARS);
}

/** Hex SHA-256, the only form in which tokens are stored and looked up. */
export const hashDaemonToken = (token: string): string => createHash('sha256').update(token).digest('hex');

function checksum(body: string): string {
  let n = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_CHARS; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}
