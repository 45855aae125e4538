import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { digestFile } from '@titanbot/service-kit/file-digest';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { ReadModel } from '../store/read-model.js';
import { buildExport } from './build.js';
import { context } from '@opentelemetry/api';
import { inSpan, linkTo, tracerOf, tracingEnabled } from '@titanbot/service-kit/tracing';

const TRACER = tracerOf('read');

/** A built daemon database on disk. */
export interface ExportFile {
  scope: number;
  version: string;
  path: string;
  sizeBytes: number;
  /** Lower-case hex SHA-256 of the whole file. */
  sha256: string;
  /** The model's feed revision when it was built (observability only). */
  revision: number;
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
 * the same pair share one build) and kept on disk under `dir`, at most `maxBytes` bytes in all
 * (lru-cache: least recently used out first, its file deleted). A file larger than `maxBytes`
 * counts as exactly `maxBytes`, so the newest one always stays. An evicted file that a download
 * still has open stays readable to it (POSIX unlink semantics). The cache starts empty: files from
 * an earlier process are deleted, since versions are cheap to rebuild.
 */
export class ExportCache {
  private readonly entries: LRUCache<string, ExportFile>;
  private readonly building = new Map<string, Promise<ExportFile>>();
  private readonly counters = { builds: 0, hits: 0, evictions: 0 };

  constructor(
    private readonly dir: string,
    maxBytes: number,
    private readonly model: ReadModel,
    private readonly logger: Logger,
  ) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    this.entries = new LRUCache<string, ExportFile>({
      maxSize: maxBytes,
      sizeCalculation: (file) => Math.max(1, Math.min(file.sizeBytes, maxBytes)),
      dispose: (file, _key, reason) => {
        if (reason !== 'evict') return;
        this.counters.evictions++;
        rm(file.path, { force: true }).catch((err: unknown) => this.logger.warn({ err, file: file.path }, 'could not delete an evicted export'));
      },
    });
  }

  /** The export of `scope` at its current version, built if needed (once: concurrent callers share the build). */
  latest(scope: number): Promise<ExportFile> {
    const version = this.model.versions.version(scope);
    const key = cacheKey(scope, version);
    const cached = this.hit(key);
    if (cached) return Promise.resolve(cached);
    let pending = this.building.get(key);
    if (!pending) {
      const build = (): Promise<ExportFile> => this.build(scope, version);
      // Traced: a child of the download that asked for it, linked to the change that made the version.
      pending = (tracingEnabled() ? inSpan(TRACER, 'export.build', build, context.active(), linkTo(this.model.versions.changeTraceparent(scope))) : build()).finally(() =>
        this.building.delete(key),
      );
      this.building.set(key, pending);
    }
    return pending;
  }

  /** The export of `scope` at exactly `version`, if it is still kept (or being built). */
  pinned(scope: number, version: string): Promise<ExportFile> | undefined {
    const key = cacheKey(scope, version);
    const cached = this.hit(key);
    return cached ? Promise.resolve(cached) : this.building.get(key);
  }

  stats(): ExportCacheStats {
    return { ...this.counters, bytes: this.entries.calculatedSize, entries: this.entries.size };
  }

  private hit(key: string): ExportFile | undefined {
    const entry = this.entries.get(key);
    if (entry) this.counters.hits++;
    return entry;
  }

  private async build(scope: number, version: string): Promise<ExportFile> {
    const temp = path.join(this.dir, `.build-${randomUUID()}.sqlite`);
    const started = performance.now();
    try {
      // Synchronous, in this turn of the event loop: the model is still at `version`.
      const revision = this.model.checkpoint?.revision ?? 0;
      buildExport(this.model.reader, temp, scope);
      const { size, sha256 } = await digestFile(temp);
      const file = path.join(this.dir, `${scope}-${version}.sqlite`);
      await rename(temp, file);
      const entry: ExportFile = { scope, version, path: file, sizeBytes: size, sha256, revision };
      this.entries.set(cacheKey(scope, version), entry);
      this.counters.builds++;
      this.logger.info({ scope, version, bytes: size, ms: Math.round(performance.now() - started) }, 'export built');
      return entry;
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }
}

const cacheKey = (scope: number, version: string): string => `${scope}/${version}`;
