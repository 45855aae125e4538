import { open } from 'node:fs/promises';
import path from 'node:path';
import writeFileAtomicLib from 'write-file-atomic';

/** Makes a rename in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `file` with `data` so a reader sees the old or the new content, never a mix
 * (write-file-atomic: temp file, fsync, rename), then makes the rename durable. `mode` e.g. 0o600.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  await writeFileAtomicLib(file, data, { mode, fsync: true });
  await fsyncDir(path.dirname(file));
}

/** Whether a file-system error means the file does not exist. */
export const isNotFound = (err: unknown): boolean => (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
