import { createHash } from 'node:crypto';
import { open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ExportEncoding } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { digestFile } from '@titanbot/service-kit/file-digest';
import { applyDelta } from 'fossil-delta';
import { ChecksumMismatchError, DeltaFailedError } from './errors.js';
import { fsyncDir, isNotFound, writeFileAtomic } from './files.js';
import type { SyncLogger } from './sync-logger.js';

/** What `dbPath` holds, as kept in `${dbPath}.version` (JSON; an older client wrote the version alone). */
export interface Held {
  version: string;
  /** Lower-case hex SHA-256 of the file; absent in an older client's sidecar. */
  sha256?: string;
  /** The scope it was downloaded for (null = global); absent in an older client's sidecar. */
  logicalId?: number | null;
}

/**
 * What a partial download is a prefix of, as kept in `${dbPath}.download.json`: the file it makes
 * (version, size, SHA-256) and what the bytes are (the file itself, or a delta from the held file
 * `base`). An older client's pin has no encoding: the file itself.
 */
export interface Pin {
  version: string;
  sizeBytes: number;
  sha256: string;
  encoding?: ExportEncoding;
  /** Bytes of the delta; the file's size for the file itself. */
  payloadSizeBytes?: number;
  /** For a delta: the held file it applies to. */
  base?: { version: string; sha256: string };
}

export const isDeltaPin = (pin: Pin | undefined): boolean => pin?.encoding === ExportEncoding.EXPORT_ENCODING_FOSSIL_DELTA;
export const payloadSize = (pin: Pin): number => pin.payloadSizeBytes ?? pin.sizeBytes;

export interface DownloadState {
  pin: Pin | undefined;
  written: number;
}

/**
 * The files of one daemon database beside `dbPath`: what it holds (`${dbPath}.version`), a
 * partial download (`${dbPath}.download`) and what that is a prefix of (`${dbPath}.download.json`).
 * Finishing a download is here too: a delta applied to the file held, the result verified against
 * its pin, fsynced and renamed over `dbPath` (readers never see a torn file). The network side is
 * the Downloader's.
 */
export class LocalDatabase {
  private held: Held = { version: '' };
  private readonly partPath: string;
  private readonly pinPath: string;
  private readonly versionPath: string;

  constructor(
    readonly dbPath: string,
    private readonly logicalId: number | undefined,
    private readonly log: SyncLogger,
  ) {
    this.partPath = `${dbPath}.download`;
    this.pinPath = `${dbPath}.download.json`;
    this.versionPath = `${dbPath}.version`;
  }

  /**
   * The version `dbPath` holds for this scope; '' when there is no file, no sidecar, or the file
   * was downloaded for another scope (switching logical id downloads).
   */
  get heldVersion(): string {
    const scope = this.logicalId ?? null;
    return this.held.logicalId === undefined || this.held.logicalId === scope ? this.held.version : '';
  }

  /** Lower-case hex SHA-256 of the file held for this scope; '' when unknown. */
  get heldSha256(): string {
    return this.heldVersion === '' ? '' : (this.held.sha256 ?? '');
  }

  /** Whether `sha256` is the content of the file held for this scope (then nothing needs downloading). */
  holds(sha256: string): boolean {
    return this.heldVersion !== '' && this.held.sha256 === sha256;
  }

  /** Reads what `dbPath` holds from its sidecar. Throws what the file system answers but "not found" (a parent that is a file, no permission). */
  async loadHeld(): Promise<void> {
    try {
      await stat(this.dbPath);
      const text = (await readFile(this.versionPath, 'utf8')).trim();
      this.held = parseHeld(text);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.held = { version: '' };
    }
  }

  /** Records, without downloading, that the file held is `pin`'s content under `pin`'s version. */
  async recordAlreadyHeld(pin: Pin): Promise<void> {
    await this.discardPartial();
    await this.record({ version: pin.version, sha256: pin.sha256, logicalId: this.logicalId ?? null });
  }

  /** Starts a partial download for `pin`: the pin file first, so it never describes another version's bytes. */
  async pinPartial(pin: Pin): Promise<void> {
    await writeFileAtomic(this.pinPath, JSON.stringify(pin));
  }

  /** The partial file, to append at `written` (0: a new, empty one). */
  openPartial(written: number): Promise<FileHandle> {
    return open(this.partPath, written === 0 ? 'w' : 'r+');
  }

  /** Makes the complete partial download `pin` the file held: patched first when it is a delta, then installed. */
  async finish(pin: Pin): Promise<void> {
    if (isDeltaPin(pin)) await this.patch(pin);
    await this.install(pin);
  }

  /**
   * Turns the complete delta in the partial file into the new file, in its place: the held file
   * is read, checked against the delta's base, the delta applied in memory (Fossil's own checksum
   * checked) and the result written atomically. Throws DeltaFailedError (partial files deleted)
   * when the held file is not the base or the delta is corrupt; install() then verifies the result.
   */
  private async patch(pin: Pin): Promise<void> {
    try {
      const base = await readFile(this.dbPath);
      if (createHash('sha256').update(base).digest('hex') !== pin.base?.sha256) throw new Error('the file held is no longer the delta\'s base');
      // fossil-delta returns a plain Uint8Array whatever it is given: wrap it, do not copy it.
      const target: Uint8Array = applyDelta(base, await readFile(this.partPath));
      await writeFileAtomic(this.partPath, Buffer.from(target.buffer, target.byteOffset, target.byteLength));
    } catch (err) {
      await this.discardPartial();
      throw new DeltaFailedError(`delta to ${pin.version}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Verifies the complete new file against `pin`, renames it over `dbPath`, records the version. */
  private async install(pin: Pin): Promise<void> {
    const { size, sha256 } = await digestFile(this.partPath);
    if (size !== pin.sizeBytes || sha256 !== pin.sha256) {
      await this.discardPartial();
      const message = `${isDeltaPin(pin) ? 'patched' : 'downloaded'} export ${pin.version} failed verification: ${size} bytes with sha256 ${sha256}, header announced ${pin.sizeBytes} bytes with sha256 ${pin.sha256}`;
      throw isDeltaPin(pin) ? new DeltaFailedError(message) : new ChecksumMismatchError(message);
    }
    await rename(this.partPath, this.dbPath);
    await fsyncDir(path.dirname(this.dbPath));
    await rm(this.pinPath, { force: true });
    await this.record({ version: pin.version, sha256, logicalId: this.logicalId ?? null });
    this.log('installed', { version: pin.version, bytes: size, sha256, ...(isDeltaPin(pin) ? { deltaBytes: payloadSize(pin) } : {}) });
  }

  /** Writes what is held to the sidecar (atomically) and remembers it. */
  private async record(held: Held): Promise<void> {
    await writeFileAtomic(this.versionPath, `${JSON.stringify(held)}\n`);
    this.held = held;
  }

  /** The pinned partial download left beside `dbPath`, if its pin file is intact and it is not oversized. */
  async readPartial(): Promise<DownloadState | undefined> {
    let pin: unknown;
    let written: number;
    try {
      pin = JSON.parse(await readFile(this.pinPath, 'utf8'));
      written = (await stat(this.partPath)).size;
    } catch {
      return undefined;
    }
    if (!isPin(pin) || written > payloadSize(pin)) return undefined;
    return { pin, written };
  }

  async discardPartial(): Promise<void> {
    await rm(this.partPath, { force: true });
    await rm(this.pinPath, { force: true });
  }
}

/** The sidecar's content: JSON, or an older client's bare version string. */
function parseHeld(text: string): Held {
  try {
    const held = JSON.parse(text) as Partial<Held> | null;
    if (typeof held?.version === 'string') return { version: held.version, sha256: held.sha256, logicalId: held.logicalId };
  } catch {
    // An older client's sidecar: the version alone.
  }
  return { version: text };
}

function isPin(value: unknown): value is Pin {
  const pin = value as Partial<Pin> | null;
  return typeof pin?.version === 'string' && Number.isSafeInteger(pin.sizeBytes) && typeof pin.sha256 === 'string';
}
