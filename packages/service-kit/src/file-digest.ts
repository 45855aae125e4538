import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** A SHA-256 as the contracts carry it: 64 lower-case hex digits. */
export const isSha256Hex = (value: string): boolean => /^[0-9a-f]{64}$/.test(value);

/** Size (bytes) and lower-case hex SHA-256 of a whole file, read as a stream. */
export async function digestFile(file: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}
