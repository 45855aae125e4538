import { readFile } from 'node:fs/promises';
import type { DownloadExportResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { LRUCache } from 'lru-cache';
import { preEncodeChunk } from './wire-encoding.js';

/** A file on disk whose bytes never change (an export or a delta, named by what it holds). */
export interface Payload {
  path: string;
  sizeBytes: number;
}

/** Export files up to this size (bytes) are held in memory, as their chunk messages. */
const MAX_FILE_BYTES = 8 * 1024 * 1024;
/** At most this many bytes (of all held files) per replica. */
const MAX_BYTES = 64 * 1024 * 1024;

/**
 * The most recently downloaded export files and deltas, each read from disk once and held as its chunk
 * messages, already encoded (wire-encoding.ts): every download of a held file sends the same
 * message objects, so a download costs no file I/O, no buffer and no encoding, and 200 downloads
 * of one file hold it once. At most MAX_BYTES in all (lru-cache), least recently used out first. Keyed by
 * path: a cached export's path names its (scope, version) and its bytes never change; whether a
 * version may still be served is decided by the export cache before this is asked.
 */
export class HotExports {
  private readonly files = new LRUCache<string, { size: number; chunks: Promise<readonly DownloadExportResponse[]> }>({
    maxSize: MAX_BYTES,
    sizeCalculation: (entry) => Math.max(1, entry.size),
  });

  /** @param chunkBytes bytes per chunk message (EXPORT_CHUNK_BYTES). */
  constructor(private readonly chunkBytes: number) {}

  /**
   * The file as chunk messages (chunk i starts at byte i × chunkBytes), or undefined when it is too
   * large to hold. Rejects with the file system's error (ENOENT when the file was evicted).
   */
  chunks(file: Payload): Promise<readonly DownloadExportResponse[]> | undefined {
    if (file.sizeBytes > MAX_FILE_BYTES) return undefined;
    const hit = this.files.get(file.path);
    if (hit) return hit.chunks;
    const chunks = readFile(file.path).then((bytes) => {
      if (bytes.length !== file.sizeBytes) throw new Error(`export ${file.path} has ${bytes.length} bytes, not ${file.sizeBytes}`);
      const messages: DownloadExportResponse[] = [];
      for (let offset = 0; offset < bytes.length; offset += this.chunkBytes) {
        messages.push(preEncodeChunk(offset, bytes.subarray(offset, offset + this.chunkBytes)));
      }
      return messages;
    });
    const entry = { size: file.sizeBytes, chunks };
    // A failed read is not kept: the next download tries again.
    chunks.catch(() => {
      if (this.files.peek(file.path) === entry) this.files.delete(file.path);
    });
    this.files.set(file.path, entry);
    return chunks;
  }
}
