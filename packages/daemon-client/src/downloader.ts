import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { rootCertificates } from 'node:tls';
import { Agent, fetch, type Dispatcher, type Response } from 'undici';
import { DownloadExportRequest, ExportEncoding, type DaemonServiceClient, type DownloadExportResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { sleep } from '@titanbot/service-kit/backoff';
import { readPem, type ClientTlsSettings } from '@titanbot/service-kit/tls';
import { DeltaFailedError, describeError, ExportProtocolError, IncompleteStreamError, isRestart, isRetryable, PinMismatchError, PublicUrlError, retryDelayMs, SchemaTooNewError } from './errors.js';
import { isDeltaPin, LocalDatabase, payloadSize, type DownloadState, type Pin } from './local-database.js';
import type { SyncLogger } from './sync-logger.js';
import type { TokenKeeper } from './token-keeper.js';

/** The newest daemon database schema this client installs (ExportHeader.schema_version). */
export const SUPPORTED_SCHEMA_VERSION = 1;

/** Restarts from zero (version gone from the server's cache) before a download gives up. */
const DOWNLOAD_RESTARTS = 3;

/**
 * The resumable download state machine for one daemon database file (`dbPath`): bytes go to
 * `${dbPath}.download`, pinned to one version by `${dbPath}.download.json`; a broken stream resumes
 * from the bytes written (across process restarts too), a version gone from the server restarts
 * from zero with the latest. The request names the file held, so the server may send a Fossil
 * delta from it instead of the file: the delta is applied to the held file in memory and the
 * result written to a temporary file. When the replica offers the payload at a signed URL (a CDN),
 * it is fetched from there with the same resume (`Range`) and checks; a URL that fails (network,
 * status, a body that ends early) is logged (`public-url-failed`) and the download goes on over
 * DownloadExport from the bytes written. Either way the new file is verified against the header's
 * size and SHA-256, fsynced and renamed over `dbPath`, so readers never see a torn file;
 * `${dbPath}.version` records what is held (version, SHA-256 and scope). A delta that fails (the
 * held file changed, corrupt bytes) is dropped and the whole file downloaded instead. Content
 * whose SHA-256 is already held is never downloaded again: only its new version is recorded.
 */
export class Downloader {
  private readonly local: LocalDatabase;

  constructor(
    private readonly client: DaemonServiceClient,
    private readonly token: TokenKeeper,
    dbPath: string,
    private readonly logicalId: number | undefined,
    private readonly log: SyncLogger,
    /** How payload URLs are fetched (publicUrlDispatcher); undefined: undici's default agent. */
    private readonly publicUrls: Dispatcher | undefined,
  ) {
    this.local = new LocalDatabase(dbPath, logicalId, log);
  }

  /** The version the file holds for this scope ('' when none; LocalDatabase.heldVersion). */
  get heldVersion(): string {
    return this.local.heldVersion;
  }

  /** Lower-case hex SHA-256 of the file held for this scope; '' when unknown. */
  get heldSha256(): string {
    return this.local.heldSha256;
  }

  /** Reads what the file holds (LocalDatabase.loadHeld). */
  loadHeld(): Promise<void> {
    return this.local.loadHeld();
  }

  /**
   * Downloads the latest export (or a delta to it from the file held) and installs it over
   * `dbPath`; resolves with the installed version and the bytes downloaded. A partial file left
   * for `wanted` (by an earlier attempt or process) is resumed. A broken stream or a "not now" answer (isRetryable) is retried from the bytes written,
   * after retryDelayMs, until `deadlineMs` (epoch ms; default never). Rejects with the last error
   * when the next try would start after `deadlineMs`, after DOWNLOAD_RESTARTS restarts, at once for
   * any other answer (a refused token) or a protocol violation, and with ChecksumMismatchError
   * when the file fails verification (the partial file is then deleted). A delta that cannot be
   * applied is logged (`delta-failed`) and the whole file downloaded instead.
   */
  async download(wanted: string, signal?: AbortSignal, deadlineMs = Number.POSITIVE_INFINITY): Promise<{ version: string; bytes: number }> {
    try {
      return await this.fetch(wanted, true, signal, deadlineMs);
    } catch (err) {
      if (!(err instanceof DeltaFailedError)) throw err;
      this.log('delta-failed', { version: wanted, error: err.message });
      return this.fetch(wanted, false, signal, deadlineMs);
    }
  }

  /**
   * download() with or without naming the held file (`mayDelta`); rejects with DeltaFailedError
   * when a delta arrived whole but could not be applied (the partial files are then deleted).
   */
  private async fetch(wanted: string, mayDelta: boolean, signal: AbortSignal | undefined, deadlineMs: number): Promise<{ version: string; bytes: number }> {
    let state = await this.local.readPartial();
    if (state?.pin?.version !== wanted || (!mayDelta && isDeltaPin(state.pin))) {
      await this.local.discardPartial();
      state = { pin: undefined, written: 0 };
    }
    let stalls = 0;
    let restarts = 0;
    // Asked for until a URL fails once; then DownloadExport carries the rest of this download.
    let viaUrl = true;
    for (;;) {
      const before = state.written;
      try {
        if (await this.attempt(state, mayDelta, viaUrl, signal)) {
          // The server's file is the one held (same SHA-256): record its version, download nothing.
          const pin = state.pin!;
          await this.local.recordAlreadyHeld(pin);
          this.log('already-held', { version: pin.version, sha256: pin.sha256 });
          return { version: pin.version, bytes: 0 };
        }
        break;
      } catch (err) {
        if (signal?.aborted) throw err;
        if (err instanceof PublicUrlError) {
          this.log('public-url-failed', { version: state.pin?.version, offset: state.written, message: err.message });
          viaUrl = false;
          continue;
        }
        if (err instanceof ExportProtocolError) {
          await this.local.discardPartial();
          throw err;
        }
        if (isRestart(err)) {
          if (++restarts > DOWNLOAD_RESTARTS) throw err;
          this.log('download-restarted', { version: state.pin?.version, ...describeError(err) });
          await this.local.discardPartial();
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
    await this.local.finish(pin);
    return { version: pin.version, bytes: payloadSize(pin) };
  }

  /**
   * One DownloadExport call from `state` (pinned version and offset, or latest from 0), appending to
   * the partial file, from the chunks or (`viaUrl`, when the header offers one) from the signed
   * URL; updates `state` as bytes land so a retry knows where to resume. Resolves true, having read
   * only the header, when a fresh download announces the file already held. Rejects with
   * PublicUrlError when the offered URL fails.
   */
  private async attempt(state: DownloadState, mayDelta: boolean, viaUrl: boolean, signal: AbortSignal | undefined): Promise<boolean> {
    // A fresh download names the file held (the server may answer with a delta); a resumed one
    // names it only when it is a delta, since the bytes so far are a prefix of that delta.
    const held = state.pin ? state.pin.base : mayDelta && this.heldSha256 !== '' ? { version: this.heldVersion, sha256: this.heldSha256 } : undefined;
    const call = this.client.downloadExport(
      DownloadExportRequest.fromPartial({
        logicalId: this.logicalId,
        version: state.pin?.version ?? '',
        offset: state.written,
        heldVersion: held?.version ?? '',
        heldSha256: held?.sha256 ?? '',
        acceptPublicUrl: viaUrl,
      }),
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
          const delta = header.encoding === ExportEncoding.EXPORT_ENCODING_FOSSIL_DELTA;
          if (header.encoding !== ExportEncoding.EXPORT_ENCODING_UNSPECIFIED && !delta) throw new ExportProtocolError(`DownloadExport sent encoding ${header.encoding}, unknown to this client`);
          if (delta && (!held || header.baseSha256.toLowerCase() !== held.sha256)) throw new ExportProtocolError('DownloadExport sent a delta from a file this client does not hold');
          const pin: Pin = {
            version: header.version,
            sizeBytes: header.sizeBytes,
            sha256: header.sha256.toLowerCase(),
            encoding: header.encoding,
            payloadSizeBytes: delta ? header.payloadSizeBytes : header.sizeBytes,
            ...(delta ? { base: held } : {}),
          };
          if (state.pin) {
            if (pin.version !== state.pin.version || pin.sizeBytes !== state.pin.sizeBytes || pin.sha256 !== state.pin.sha256 || payloadSize(pin) !== payloadSize(state.pin) || isDeltaPin(pin) !== isDeltaPin(state.pin)) {
              throw new PinMismatchError(`export ${state.pin.version} changed between requests (size ${pin.sizeBytes}, sha256 ${pin.sha256}, payload ${payloadSize(pin)} bytes)`);
            }
          } else {
            // The pin file must never describe bytes of another version: drop the old partial first.
            await this.local.discardPartial();
            state.pin = pin;
            if (this.local.holds(pin.sha256)) return true;
            await this.local.pinPartial(pin);
          }
          this.log('download-started', { version: pin.version, sizeBytes: pin.sizeBytes, offset: state.written, ...(delta ? { deltaBytes: pin.payloadSizeBytes } : {}) });
          file = await this.local.openPartial(state.written);
          if (header.publicUrl !== '') {
            if (!viaUrl) throw new ExportProtocolError('DownloadExport offered a URL that was not asked for');
            call.cancel();
            await fetchRange(header.publicUrl, state.written, payloadSize(pin), file, (bytes) => (state.written += bytes), signal, this.publicUrls);
            break;
          }
        } else if (kind?.$case === 'chunk') {
          const chunk = kind.value;
          if (!file || !state.pin) throw new ExportProtocolError('DownloadExport sent a chunk before the header');
          if (chunk.offset !== state.written) throw new ExportProtocolError(`DownloadExport sent a chunk at offset ${chunk.offset}, expected ${state.written}`);
          if (state.written + chunk.data.length > payloadSize(state.pin)) {
            throw new ExportProtocolError(`DownloadExport sent more than the announced ${payloadSize(state.pin)} bytes`);
          }
          await file.write(chunk.data, 0, chunk.data.length, chunk.offset);
          state.written += chunk.data.length;
        }
      }
      if (!file || !state.pin) throw new ExportProtocolError('DownloadExport ended without a header');
      if (state.written < payloadSize(state.pin)) throw new IncompleteStreamError(`DownloadExport ended at byte ${state.written} of ${payloadSize(state.pin)}`);
      await file.sync();
      return false;
    } finally {
      call.cancel();
      signal?.removeEventListener('abort', cancel);
      await file?.close();
    }
  }
}

/**
 * The HTTP client for the payload URLs a replica offers, for a daemon whose TLS toward the replica
 * is `tls`: with a CA file, one that trusts the system's CAs and that CA (read once, here), so a
 * CDN or proxy whose certificate comes from the same private CA as the replica's is reached as
 * well as one with a public certificate; otherwise undefined (undici's default agent: the system's
 * CAs). Throws StartupError when the CA file cannot be read, as the gRPC credentials do.
 */
export function publicUrlDispatcher(tls: ClientTlsSettings | undefined): Dispatcher | undefined {
  if (!tls?.caFile) return undefined;
  return new Agent({ connect: { ca: [...rootCertificates, readPem(tls.caFile)] } });
}

/**
 * Fetches bytes `from`..`size` of the payload at `url` (a `Range` request when `from` > 0: 206
 * expected, else 200) into `file` at their offsets through `dispatcher` (publicUrlDispatcher),
 * calling `written(n)` as each piece lands. Rejects with PublicUrlError when the request fails
 * (connection, TLS), the status is not the one expected, or the body ends early or runs long; with
 * the file's own error when writing fails (a full disk is an install failure, not a reason to fall back).
 */
async function fetchRange(
  url: string,
  from: number,
  size: number,
  file: FileHandle,
  written: (bytes: number) => void,
  signal: AbortSignal | undefined,
  dispatcher: Dispatcher | undefined,
): Promise<void> {
  if (from === size) return;
  // The signature is a credential: logs name the path only.
  const where = url.split('?')[0];
  let response: Response;
  try {
    response = await fetch(url, { headers: from > 0 ? { range: `bytes=${from}-` } : {}, ...(signal ? { signal } : {}), ...(dispatcher ? { dispatcher } : {}) });
  } catch (err) {
    throw new PublicUrlError(`GET ${where}: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}`);
  }
  const expected = from > 0 ? 206 : 200;
  if (response.status !== expected || !response.body) {
    await response.body?.cancel();
    throw new PublicUrlError(`GET ${where}: HTTP ${response.status}, expected ${expected}`);
  }
  const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let position = from;
  try {
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch (err) {
        throw new PublicUrlError(`GET ${where}: broken at byte ${position}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (next.done) break;
      if (position + next.value.length > size) throw new PublicUrlError(`GET ${where}: more than the announced ${size} bytes`);
      await file.write(next.value, 0, next.value.length, position);
      position += next.value.length;
      written(next.value.length);
    }
  } finally {
    body.destroy();
  }
  if (position < size) throw new PublicUrlError(`GET ${where}: ended at byte ${position} of ${size}`);
}
