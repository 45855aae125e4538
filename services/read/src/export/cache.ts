import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, mkdirSync, rmSync } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ReadModel } from '../store/read-model.js';
import { buildExport } from './build.js';

/** A built daemon database on disk. */
export interface ExportFile {
  scope: number;
  version: string;
  path: string;
  sizeBytes: number;
  /** Lower-case hex SHA-256 of the whole file. */
  sha256: string;
}

/** What the cache has done, for logs and metrics. */
export interface ExportCacheStats {
  builds: number;
  hits: number;
  evictions: number;
  bytes: number;
  entries: number;
}

/**
 * Daemon databases by (scope, version), built once each (single flight: concurrent requests for
 * the same pair share one build) and kept on disk under `dir`, at most `maxBytes` bytes in all;
 * the least recently used files go first (the newest one always stays). An evicted file that a
 * download still has open stays readable to it (POSIX unlink semantics). The cache starts empty:
 * files from an earlier process are deleted, since versions are cheap to rebuild.
 */
export class ExportCache {
  private readonly entries = new Map<string, ExportFile>();
  private readonly building = new Map<string, Promise<ExportFile>>();
  private bytes = 0;
  private readonly counters = { builds: 0, hits: 0, evictions: 0 };

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly model: ReadModel,
    private readonly logger: Logger,
  ) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }

  /** The export of `scope` at its current version, built if needed. */
  latest(scope: number): Promise<ExportFile> {
    const version = this.model.versions.version(scope);
    const key = cacheKey(scope, version);
    const cached = this.touch(key);
    if (cached) return Promise.resolve(cached);
    let pending = this.building.get(key);
    if (!pending) {
      pending = this.build(scope, version).finally(() => this.building.delete(key));
      this.building.set(key, pending);
    }
    return pending;
  }

  /** The export of `scope` at exactly `version`, if it is still kept (or being built). */
  pinned(scope: number, version: string): Promise<ExportFile> | undefined {
    const key = cacheKey(scope, version);
    const cached = this.touch(key);
    return cached ? Promise.resolve(cached) : this.building.get(key);
  }

  stats(): ExportCacheStats {
    return { ...this.counters, bytes: this.bytes, entries: this.entries.size };
  }

  private touch(key: string): ExportFile | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    // Map order is insertion order: re-inserting makes this the most recently used.
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.counters.hits++;
    return entry;
  }

  private async build(scope: number, version: string): Promise<ExportFile> {
    const temp = path.join(this.dir, `.build-${randomUUID()}.sqlite`);
    const started = performance.now();
    try {
      // Synchronous, in this turn of the event loop: the model is still at `version`.
      buildExport(this.model.reader, temp, scope);
      const sha256 = await hashFile(temp);
      const { size } = await stat(temp);
      const file = path.join(this.dir, `${scope}-${version}.sqlite`);
      await rename(temp, file);
      const entry: ExportFile = { scope, version, path: file, sizeBytes: size, sha256 };
      this.entries.set(cacheKey(scope, version), entry);
      this.bytes += size;
      this.counters.builds++;
      this.logger.info({ scope, version, bytes: size, ms: Math.round(performance.now() - started) }, 'export built');
      this.evict();
      return entry;
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  private evict(): void {
    for (const [key, entry] of this.entries) {
      if (this.bytes <= this.maxBytes || this.entries.size <= 1) return;
      this.entries.delete(key);
      this.bytes -= entry.sizeBytes;
      this.counters.evictions++;
      rm(entry.path, { force: true }).catch((err: unknown) => this.logger.warn({ err, file: entry.path }, 'could not delete an evicted export'));
    }
  }
}

const cacheKey = (scope: number, version: string): string => `${scope}/${version}`;

function hashFile(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
