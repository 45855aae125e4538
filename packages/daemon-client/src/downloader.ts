import { open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DownloadExportRequest, type DaemonServiceClient, type DownloadExportResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { sleep } from '@titanbot/service-kit/backoff';
import { digestFile } from '@titanbot/service-kit/file-digest';
import { ChecksumMismatchError, describeError, ExportProtocolError, IncompleteStreamError, isRestart, isRetryable, PinMismatchError, retryDelayMs, SchemaTooNewError } from './errors.js';
import { fsyncDir, isNotFound, writeFileAtomic } from './files.js';
import type { SyncLogger } from './sync.js';
import type { TokenKeeper } from './token-keeper.js';

/** The newest daemon database schema this client installs (ExportHeader.schema_version). */
export const SUPPORTED_SCHEMA_VERSION = 1;

/** Restarts from zero (version gone from the server's cache) before a download gives up. */
const DOWNLOAD_RESTARTS = 3;

/** What `dbPath` holds, as kept in `${dbPath}.version` (JSON; an older client wrote the version alone). */
interface Held {
  version: string;
  /** Lower-case hex SHA-256 of the file; absent in an older client's sidecar. */
  sha256?: string;
  /** The scope it was downloaded for (null = global); absent in an older client's sidecar. */
  logicalId?: number | null;
}

/** What a partial download is a prefix of, as kept in `${dbPath}.download.json`. */
interface Pin {
  version: string;
  sizeBytes: number;
  sha256: string;
}

interface DownloadState {
  pin: Pin | undefined;
  written: number;
}

/**
 * The resumable download state machine for one daemon database file (`dbPath`): bytes go to
 * `${dbPath}.download`, pinned to one version by `${dbPath}.download.json`; a broken stream resumes
 * from the bytes written (across process restarts too), a version gone from the server restarts
 * from zero with the latest. The finished file is verified against the header's size and SHA-256,
 * fsynced and renamed over `dbPath`, so readers never see a torn file; `${dbPath}.version` records
 * what is held (version, SHA-256 and scope). Content whose SHA-256 is already held is never
 * downloaded again: only its new version is recorded.
 */
export class Downloader {
  private held: Held = { version: '' };
  private readonly partPath: string;
  private readonly pinPath: string;
  private readonly versionPath: string;

  constructor(
    private readonly client: DaemonServiceClient,
    private readonly token: TokenKeeper,
    private readonly dbPath: string,
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

  /** Reads what `dbPath` holds from its sidecar. */
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

  /**
   * Downloads the latest export and installs it over `dbPath`; resolves with the installed version
   * and its size (bytes). A partial file left for `wanted` (by an earlier attempt or process) is
   * resumed. A broken stream or a "not now" answer (isRetryable) is retried from the bytes written,
   * after retryDelayMs, until `deadlineMs` (epoch ms; default never). Rejects with the last error
   * when the next try would start after `deadlineMs`, after DOWNLOAD_RESTARTS restarts, at once for
   * any other answer (a refused token) or a protocol violation, and with an Error when the file
   * fails verification (the partial file is then deleted).
   */
  async download(wanted: string, signal?: AbortSignal, deadlineMs = Number.POSITIVE_INFINITY): Promise<{ version: string; bytes: number }> {
    let state = await this.readPartial();
    if (state?.pin?.version !== wanted) {
      await this.discardPartial();
      state = { pin: undefined, written: 0 };
    }
    let stalls = 0;
    let restarts = 0;
    for (;;) {
      const before = state.written;
      try {
        if (await this.attempt(state, signal)) {
          // The server's file is the one held (same SHA-256): record its version, download nothing.
          const pin = state.pin!;
          await this.discardPartial();
          await this.record({ version: pin.version, sha256: pin.sha256, logicalId: this.logicalId ?? null });
          this.log('already-held', { version: pin.version, sha256: pin.sha256 });
          return { version: pin.version, bytes: 0 };
        }
        break;
      } catch (err) {
        if (signal?.aborted) throw err;
        if (err instanceof ExportProtocolError) {
          await this.discardPartial();
          throw err;
        }
        if (isRestart(err)) {
          if (++restarts > DOWNLOAD_RESTARTS) throw err;
          this.log('download-restarted', { version: state.pin?.version, ...describeError(err) });
          await this.discardPartial();
          state = { pin: undefined, written: 0 };
          continue;
        }
        if (!isRetryable(err)) throw err;
        stalls = state.written > before ? 1 : stalls + 1;
        const retryInMs = retryDelayMs(stalls - 1, err);
        if (Date.now() + retryInMs > deadlineMs) throw err;
        this.log('download-interrupted', { version: state.pin?.version, offset: state.written, ...describeError(err), retryInMs: Math.round(retryInMs) });
        await sleep(retryInMs, signal);
        if (signal?.aborted) throw new Error('download aborted');
      }
    }
    const pin = state.pin;
    if (!pin) throw new ExportProtocolError('download finished without a header');
    return { version: pin.version, bytes: await this.install(pin) };
  }

  /**
   * One DownloadExport call from `state` (pinned version and offset, or latest from 0), appending to
   * the partial file; updates `state` as bytes land so a retry knows where to resume. Resolves true,
   * having read only the header, when a fresh download announces the file already held.
   */
  private async attempt(state: DownloadState, signal: AbortSignal | undefined): Promise<boolean> {
    const call = this.client.downloadExport(
      DownloadExportRequest.fromPartial({ logicalId: this.logicalId, version: state.pin?.version ?? '', offset: state.written }),
      this.token.metadata(),
    );
    const cancel = (): void => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
    let file: FileHandle | undefined;
    try {
      for await (const message of call) {
        const kind = (message as DownloadExportResponse).kind;
        if (kind?.$case === 'header') {
          if (file) throw new ExportProtocolError('DownloadExport sent a second header');
          const header = kind.value;
          if (header.schemaVersion > SUPPORTED_SCHEMA_VERSION) {
            throw new SchemaTooNewError(`export ${header.version} has schema ${header.schemaVersion}; this client installs up to ${SUPPORTED_SCHEMA_VERSION}`);
          }
          const pin: Pin = { version: header.version, sizeBytes: header.sizeBytes, sha256: header.sha256.toLowerCase() };
          if (state.pin) {
            if (pin.version !== state.pin.version || pin.sizeBytes !== state.pin.sizeBytes || pin.sha256 !== state.pin.sha256) {
              throw new PinMismatchError(`export ${state.pin.version} changed between requests (size ${pin.sizeBytes}, sha256 ${pin.sha256})`);
            }
          } else {
            // The pin file must never describe bytes of another version: drop the old partial first.
            await this.discardPartial();
            state.pin = pin;
            if (pin.sha256 === this.held.sha256 && this.heldVersion !== '') return true;
            await writeFileAtomic(this.pinPath, JSON.stringify(pin));
          }
          this.log('download-started', { version: pin.version, sizeBytes: pin.sizeBytes, offset: state.written });
          file = await open(this.partPath, state.written === 0 ? 'w' : 'r+');
        } else if (kind?.$case === 'chunk') {
          const chunk = kind.value;
          if (!file || !state.pin) throw new ExportProtocolError('DownloadExport sent a chunk before the header');
          if (chunk.offset !== state.written) throw new ExportProtocolError(`DownloadExport sent a chunk at offset ${chunk.offset}, expected ${state.written}`);
          if (state.written + chunk.data.length > state.pin.sizeBytes) {
            throw new ExportProtocolError(`DownloadExport sent more than the announced ${state.pin.sizeBytes} bytes`);
          }
          await file.write(chunk.data, 0, chunk.data.length, chunk.offset);
          state.written += chunk.data.length;
        }
      }
      if (!file || !state.pin) throw new ExportProtocolError('DownloadExport ended without a header');
      if (state.written < state.pin.sizeBytes) throw new IncompleteStreamError(`DownloadExport ended at byte ${state.written} of ${state.pin.sizeBytes}`);
      await file.sync();
      return false;
    } finally {
      call.cancel();
      signal?.removeEventListener('abort', cancel);
      await file?.close();
    }
  }

  /** Verifies the complete partial file against `pin`, renames it over `dbPath`, records the version. */
  private async install(pin: Pin): Promise<number> {
    const { size, sha256 } = await digestFile(this.partPath);
    if (size !== pin.sizeBytes || sha256 !== pin.sha256) {
      await this.discardPartial();
      throw new ChecksumMismatchError(
        `downloaded export ${pin.version} failed verification: ${size} bytes with sha256 ${sha256}, header announced ${pin.sizeBytes} bytes with sha256 ${pin.sha256}`,
      );
    }
    await rename(this.partPath, this.dbPath);
    await fsyncDir(path.dirname(this.dbPath));
    await rm(this.pinPath, { force: true });
    await this.record({ version: pin.version, sha256, logicalId: this.logicalId ?? null });
    this.log('installed', { version: pin.version, bytes: size, sha256 });
    return size;
  }

  /** Writes what is held to the sidecar (atomically) and remembers it. */
  private async record(held: Held): Promise<void> {
    await writeFileAtomic(this.versionPath, `${JSON.stringify(held)}\n`);
    this.held = held;
  }

  /** The pinned partial download left beside `dbPath`, if its pin file is intact and it is not oversized. */
  private async readPartial(): Promise<DownloadState | undefined> {
    let pin: unknown;
    let written: number;
    try {
      pin = JSON.parse(await readFile(this.pinPath, 'utf8'));
      written = (await stat(this.partPath)).size;
    } catch {
      return undefined;
    }
    if (!isPin(pin) || written > pin.sizeBytes) return undefined;
    return { pin, written };
  }

  private async discardPartial(): Promise<void> {
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
