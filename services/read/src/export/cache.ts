import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { digestFile } from '@titanbot/service-kit/file-digest';
import { createDelta } from 'fossil-delta';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { ReadModel } from '../store/read-model.js';
import { buildExport } from '@titanbot/service-kit/daemon-database';
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

/** A Fossil delta on disk that turns `base` into `target` (both files of one scope). */
export interface ExportDelta {
  path: string;
  /** Bytes of the delta. */
  sizeBytes: number;
  base: ExportFile;
  target: ExportFile;
}

/** The file a daemon says it holds (DownloadExportRequest held_version, held_sha256). */
export interface HeldFile {
  version: string;
  sha256: string;
}

/** What the cache has done, for logs and metrics. */
export interface ExportCacheStats {
  builds: number;
  hits: number;
  evictions: number;
  /** Deltas built (each (scope, from, to) once while it is kept). */
  deltaBuilds: number;
  /** Deltas asked for whose base this replica no longer keeps (the daemon then gets the full file). */
  deltaBaseMissing: number;
  bytes: number;
  entries: number;
}

/** What the LRU holds: whole files and deltas, both on disk, both within one byte budget. */
type Entry = ExportFile | ExportDelta;

/**
 * `<scope>-<version>-<sha256>.sqlite`: the name a kept export has on disk. A restart finds it again
 * by name alone, without reading it (the bytes under a name never change: files are renamed into
 * place whole).
 */
const KEPT_FILE = /^(\d+)-([0-9a-f]{32})-([0-9a-f]{64})\.sqlite$/;

/**
 * Daemon databases by (scope, version), built once each (single flight: concurrent requests for
 * the same pair share one build), and Fossil deltas between two of them by (scope, from, to), also
 * built once each; all kept on disk under `dir`, at most `maxBytes` bytes in all (lru-cache: least
 * recently used out first, its file deleted). An entry larger than `maxBytes` counts as exactly
 * `maxBytes`, so the newest one always stays. An evicted file that a download still has open stays
 * readable to it (POSIX unlink semantics). Whole files survive a restart (a daemon one version
 * behind still gets a delta from a restarted replica): they are found again by name, oldest
 * first; deltas and unfinished builds are deleted, as they are cheap to make again.
 */
export class ExportCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly building = new Map<string, Promise<ExportFile>>();
  private readonly deltas = new Map<string, Promise<ExportDelta | undefined>>();
  private readonly counters = { builds: 0, hits: 0, evictions: 0, deltaBuilds: 0, deltaBaseMissing: 0 };

  constructor(
    private readonly dir: string,
    maxBytes: number,
    private readonly model: ReadModel,
    private readonly logger: Logger,
  ) {
    mkdirSync(dir, { recursive: true });
    this.entries = new LRUCache<string, Entry>({
      maxSize: maxBytes,
      sizeCalculation: (entry) => Math.max(1, Math.min(entry.sizeBytes, maxBytes)),
      dispose: (entry, _key, reason) => {
        if (reason !== 'evict') return;
        this.counters.evictions++;
        rm(entry.path, { force: true }).catch((err: unknown) => this.logger.warn({ err, file: entry.path }, 'could not delete an evicted export'));
      },
    });
    this.reload();
  }

  /** Takes back the whole files an earlier process kept, least recently built first; deletes the rest. */
  private reload(): void {
    const kept = readdirSync(this.dir)
      .map((name) => ({ name, match: KEPT_FILE.exec(name), file: path.join(this.dir, name) }))
      .map((f) => ({ ...f, stat: statSync(f.file) }))
      .sort((a, b) => a.stat.mtimeMs - b.stat.mtimeMs);
    for (const { match, file, stat } of kept) {
      if (!match) {
        rmSync(file, { recursive: true, force: true });
        continue;
      }
      const entry: ExportFile = { scope: Number(match[1]), version: match[2]!, path: file, sizeBytes: stat.size, sha256: match[3]!, revision: 0 };
      this.entries.set(cacheKey(entry.scope, entry.version), entry);
    }
    if (kept.length) this.logger.info({ files: this.entries.size }, 'exports kept from before the restart');
  }

  /**
   * The export of what `device` gets of `scope` now (the stable content, or a rollout's candidate
   * while the device is in its cohort), built if needed (once: concurrent callers share the build).
   */
  latest(scope: number, device: string): Promise<ExportFile> {
    const { version, rollout } = this.model.versions.contentFor(scope, device);
    const key = cacheKey(scope, version);
    const cached = this.hit(key);
    if (cached && !isDelta(cached)) return Promise.resolve(cached);
    let pending = this.building.get(key);
    if (!pending) {
      const build = (): Promise<ExportFile> => this.build(scope, version, rollout);
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
    return cached && !isDelta(cached) ? Promise.resolve(cached) : this.building.get(key);
  }

  /**
   * The Fossil delta from the file a daemon holds to `target`, built once per (scope, from, to)
   * (concurrent callers share the build) and kept like a file. Undefined when this replica no
   * longer keeps `held` (or keeps another file under its version), or holds exactly `target`.
   */
  delta(target: ExportFile, held: HeldFile): Promise<ExportDelta | undefined> {
    const key = `${cacheKey(target.scope, held.version)}/${target.version}`;
    const cached = this.hit(key);
    if (cached) return Promise.resolve(cached as ExportDelta);
    let pending = this.deltas.get(key);
    if (!pending) {
      const base = this.entries.get(cacheKey(target.scope, held.version));
      if (!base || isDelta(base) || base.sha256 !== held.sha256 || base.sha256 === target.sha256) {
        if (!base) this.counters.deltaBaseMissing++;
        return Promise.resolve(undefined);
      }
      pending = this.buildDelta(key, base, target).finally(() => this.deltas.delete(key));
      this.deltas.set(key, pending);
    }
    return pending;
  }

  /** The kept whole file whose SHA-256 is `sha256` (of any scope: equal digests, equal bytes), if any. */
  fileWithSha256(sha256: string): ExportFile | undefined {
    return this.entries.find((entry) => !isDelta(entry) && entry.sha256 === sha256) as ExportFile | undefined;
  }

  /** The kept delta from the file with SHA-256 `baseSha256` to the one with `sha256`, if any. */
  deltaWithSha256(baseSha256: string, sha256: string): ExportDelta | undefined {
    return this.entries.find((entry) => isDelta(entry) && entry.base.sha256 === baseSha256 && entry.target.sha256 === sha256) as ExportDelta | undefined;
  }

  stats(): ExportCacheStats {
    return { ...this.counters, bytes: this.entries.calculatedSize, entries: this.entries.size };
  }

  private hit(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry) this.counters.hits++;
    return entry;
  }

  private async buildDelta(key: string, base: ExportFile, target: ExportFile): Promise<ExportDelta | undefined> {
    let source: Buffer;
    let result: Buffer;
    try {
      [source, result] = await Promise.all([readFile(base.path), readFile(target.path)]);
    } catch (err) {
      // Evicted since the lookup: the daemon gets the full file.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const bytes = Buffer.from(createDelta(source, result));
    const file = path.join(this.dir, `${base.scope}-${base.version}-${target.version}.delta`);
    const temp = path.join(this.dir, `.build-${randomUUID()}.delta`);
    try {
      await writeFile(temp, bytes);
      await rename(temp, file);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    const delta: ExportDelta = { path: file, sizeBytes: bytes.length, base, target };
    this.entries.set(key, delta);
    this.counters.deltaBuilds++;
    this.logger.debug({ scope: base.scope, from: base.version, to: target.version, bytes: bytes.length, of: target.sizeBytes }, 'export delta built');
    return delta;
  }

  private async build(scope: number, version: string, rollout: string | undefined): Promise<ExportFile> {
    const temp = path.join(this.dir, `.build-${randomUUID()}.sqlite`);
    const started = performance.now();
    try {
      // Synchronous, in this turn of the event loop: the model is still at `version`.
      const revision = this.model.checkpoint?.revision ?? 0;
      buildExport(this.model.reader, temp, scope, rollout);
      const { size, sha256 } = await digestFile(temp);
      const file = path.join(this.dir, `${scope}-${version}-${sha256}.sqlite`);
      await rename(temp, file);
      const entry: ExportFile = { scope, version, path: file, sizeBytes: size, sha256, revision };
      this.entries.set(cacheKey(scope, version), entry);
      this.counters.builds++;
      this.logger.info({ scope, version, ...(rollout ? { rollout } : {}), bytes: size, ms: Math.round(performance.now() - started) }, 'export built');
      return entry;
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }
}

const cacheKey = (scope: number, version: string): string => `${scope}/${version}`;
const isDelta = (entry: Entry): entry is ExportDelta => 'base' in entry;
