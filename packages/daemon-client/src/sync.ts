import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Metadata, status, type CallOptions, type ServiceError } from '@grpc/grpc-js';
import {
  CheckVersionRequest,
  DownloadExportRequest,
  GetTokenRequest,
  RotateTokenRequest,
  WatchVersionRequest,
  type DaemonServiceClient,
  type DownloadExportResponse,
  type Token,
  type WatchVersionResponse,
} from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { isWellFormedDaemonToken, SHOWN_PREFIX_CHARS } from '@titanbot/service-kit/daemon-token';
import { fullJitter, sleep } from '@titanbot/service-kit/backoff';
import { createDaemonClient } from './client.js';

/** Receives one structured event (e.g. `installed`, `download-interrupted`, `token-rotated`). */
export type SyncLogger = (event: string, fields: Record<string, unknown>) => void;

/** Where to sync from and to. */
export interface DaemonSyncOptions {
  /** Read service address, `host:port`. */
  server: string;
  /** File holding the daemon token (one line, `tbd_...`); rewritten on rotation. */
  tokenFile: string;
  /** The daemon database to keep current; `${dbPath}.version` and `${dbPath}.download*` live beside it. */
  dbPath: string;
  /** Account scope; absent = the global scope. */
  logicalId?: number;
  logger?: SyncLogger;
  /** A stub to use instead of creating one for `server` (it is then not closed by `close()`). */
  client?: DaemonServiceClient;
}

/** Outcome of `syncOnce`. */
export interface SyncResult {
  /** The version now held. */
  version: string;
  /** Whether a new file was installed. */
  changed: boolean;
  /** Size in bytes of the installed file; 0 when unchanged. */
  bytes: number;
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

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => unknown;

const UNARY_DEADLINE_MS = 30_000;
/** Attempts in a row without new bytes before a download gives up. */
const DOWNLOAD_ATTEMPTS = 5;
/** Restarts from zero (version gone from the server's cache) before a download gives up. */
const DOWNLOAD_RESTARTS = 3;
const ROTATE_AT_FRACTION = 0.8;
/** setTimeout fires at once for longer delays; sleep in slices instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The server sent something the protocol does not allow; retrying would not help. */
class ExportProtocolError extends Error {}
/** A pinned version came back with a different size or hash: the partial file is useless. */
class PinMismatchError extends Error {}
/** The stream ended cleanly before the whole file arrived. */
class IncompleteStreamError extends Error {}

/**
 * Keeps a local daemon database (`dbPath`) equal to the read service's latest export of one scope,
 * authenticating with the token in `tokenFile` and rotating that token before it expires.
 * Downloads resume after a broken stream or a process restart, are verified against the header's
 * size and SHA-256, and replace `dbPath` by an atomic rename, so readers never see a torn file.
 * Not safe for two instances on the same `dbPath` at once.
 */
export class DaemonSync {
  private readonly client: DaemonServiceClient;
  private readonly ownsClient: boolean;
  private readonly log: SyncLogger;
  private readonly partPath: string;
  private readonly pinPath: string;
  private readonly versionPath: string;
  private token = '';
  /** Bumped on every token change, so a slow reload cannot undo a rotation. */
  private tokenGeneration = 0;
  private tokenInfo: Token | undefined;
  private held = '';

  constructor(private readonly options: DaemonSyncOptions) {
    this.client = options.client ?? createDaemonClient(options.server);
    this.ownsClient = options.client === undefined;
    this.log = options.logger ?? (() => undefined);
    this.partPath = `${options.dbPath}.download`;
    this.pinPath = `${options.dbPath}.download.json`;
    this.versionPath = `${options.dbPath}.version`;
  }

  /**
   * One check, and a download when the server's version differs from the one held. Rotates the
   * token first if it is past 80 % of its lifetime (a failed rotation is logged, not raised).
   * Rejects with an Error for an unreadable or malformed token file (before any call), with the
   * gRPC ServiceError of a failed call (UNAUTHENTICATED, PERMISSION_DENIED, or UNAVAILABLE etc.
   * once retries are exhausted), or with an Error when the file fails verification (then deleted).
   */
  async syncOnce(): Promise<SyncResult> {
    await this.loadState();
    this.tokenInfo = await this.unary(this.client.getToken, GetTokenRequest.fromPartial({}));
    if (Date.now() >= rotationTime(this.tokenInfo)) {
      await this.rotate().catch((err: unknown) => this.log('token-rotation-failed', describeError(err)));
    }
    const check = await this.unary(
      this.client.checkVersion,
      CheckVersionRequest.fromPartial({ logicalId: this.options.logicalId, knownVersion: this.held }),
    );
    if (!check.changed) return { version: this.held, changed: false, bytes: 0 };
    return { ...(await this.download(check.version)), changed: true };
  }

  /**
   * Follows WatchVersion and downloads every announced version that differs from the one held
   * (announcements arriving during a download collapse into at most one more download), and
   * rotates the token at 80 % of its lifetime. Stream, download and rotation failures are logged
   * and retried with capped, jittered backoff. Resolves once `signal` aborts and all calls and
   * timers are stopped. Rejects only at start, for an unreadable or malformed token file.
   */
  async watch(signal: AbortSignal): Promise<void> {
    await this.loadState();
    if (signal.aborted) return;
    let wanted: string | undefined;
    let wake: (() => void) | undefined;
    const onAbort = (): void => wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    const downloads = this.downloadLoop(signal, () => wanted, (w) => (wake = w));
    const rotation = this.rotationLoop(signal);
    let failures = 0;
    try {
      while (!signal.aborted) {
        const error = await this.watchStream(signal, (version) => {
          failures = 0;
          wanted = version;
          wake?.();
        });
        if (signal.aborted) break;
        const retryInMs = fullJitter(failures++, 200, 10_000);
        this.log('watch-disconnected', { ...describeError(error), retryInMs: Math.round(retryInMs) });
        if (isAuthError(error)) await this.reloadToken();
        await sleep(retryInMs, signal, true);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      await Promise.all([downloads, rotation]);
    }
  }

  /** Closes the stub if this instance created it; in-flight calls fail with CANCELLED. */
  close(): void {
    if (this.ownsClient) this.client.close();
  }

  private async loadState(): Promise<void> {
    this.setToken(await readToken(this.options.tokenFile));
    this.held = await this.readHeldVersion();
  }

  private setToken(token: string): void {
    if (token === this.token) return;
    this.token = token;
    this.tokenGeneration++;
  }

  /** The version `dbPath` was built from; '' when there is no file or no sidecar. */
  private async readHeldVersion(): Promise<string> {
    try {
      await stat(this.options.dbPath);
      return (await readFile(this.versionPath, 'utf8')).trim();
    } catch (err) {
      if (isNotFound(err)) return '';
      throw err;
    }
  }

  /** Runs one download at a time while the latest announced version differs from the one held. */
  private async downloadLoop(signal: AbortSignal, wanted: () => string | undefined, setWake: (wake: (() => void) | undefined) => void): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      const version = wanted();
      if (version === undefined || version === this.held) {
        await new Promise<void>((resolve) => setWake(resolve));
        setWake(undefined);
        continue;
      }
      try {
        await this.download(version, signal);
        failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        const retryInMs = fullJitter(failures++, 1_000, 10_000);
        this.log('download-failed', { version, ...describeError(err), retryInMs: Math.round(retryInMs) });
        if (isAuthError(err)) await this.reloadToken();
        await sleep(retryInMs, signal, true);
      }
    }
  }

  /** One WatchVersion call; calls `onVersion` per message and resolves with what ended it. */
  private async watchStream(signal: AbortSignal, onVersion: (version: string) => void): Promise<unknown> {
    const call = this.client.watchVersion(
      WatchVersionRequest.fromPartial({ logicalId: this.options.logicalId, knownVersion: this.held }),
      this.metadata(),
    );
    const cancel = (): void => call.cancel();
    signal.addEventListener('abort', cancel, { once: true });
    try {
      for await (const message of call) onVersion((message as WatchVersionResponse).version);
      return undefined;
    } catch (err) {
      return err;
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  /**
   * Sleeps until the token's rotation time, rotates, repeats. A failure is retried with backoff;
   * once the token has expired the lifetime is fetched again, in case the operator replaced the file.
   */
  private async rotationLoop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        this.tokenInfo ??= await this.unary(this.client.getToken, GetTokenRequest.fromPartial({}));
        const wait = rotationTime(this.tokenInfo) - Date.now();
        if (wait > 0) {
          await sleep(Math.min(wait, MAX_TIMER_MS), signal, false);
          continue;
        }
        await this.rotate();
        failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        const retryInMs = fullJitter(failures++, 1_000, 60_000);
        this.log('token-rotation-failed', { ...describeError(err), retryInMs: Math.round(retryInMs) });
        const expire = this.tokenInfo?.expireTime?.getTime() ?? 0;
        if (Date.now() >= expire) {
          this.tokenInfo = undefined;
          await this.reloadToken();
        }
        await sleep(retryInMs, signal, false);
      }
    }
  }

  /** RotateToken, then switch to the new token and persist it (memory first: the old one is dying). */
  private async rotate(): Promise<void> {
    const response = await this.unary(this.client.rotateToken, RotateTokenRequest.fromPartial({}));
    if (!isWellFormedDaemonToken(response.token)) throw new Error('RotateToken returned a malformed token');
    this.setToken(response.token);
    this.tokenInfo = response.tokenInfo;
    await writeFileAtomic(this.options.tokenFile, `${response.token}\n`, 0o600);
    this.log('token-rotated', {
      prefix: response.token.slice(0, SHOWN_PREFIX_CHARS),
      expireTime: response.tokenInfo?.expireTime?.toISOString(),
      previousExpireTime: response.previousExpireTime?.toISOString(),
    });
  }

  /** Picks up a token file the operator replaced; keeps the current token if the file is unusable. */
  private async reloadToken(): Promise<void> {
    const generation = this.tokenGeneration;
    try {
      const token = await readToken(this.options.tokenFile);
      if (generation !== this.tokenGeneration || token === this.token) return;
      this.setToken(token);
      this.tokenInfo = undefined;
      this.log('token-reloaded', { prefix: token.slice(0, SHOWN_PREFIX_CHARS) });
    } catch (err) {
      this.log('token-file-invalid', describeError(err));
    }
  }

  /**
   * Downloads the latest export and installs it over `dbPath`. A partial file left for `wanted` (by
   * an earlier attempt or process) is resumed. Broken streams resume the pinned version from the
   * bytes already written; a version gone from the server's cache restarts from zero with the latest.
   */
  private async download(wanted: string, signal?: AbortSignal): Promise<{ version: string; bytes: number }> {
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
        await this.downloadAttempt(state, signal);
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
        if (!isTransient(err)) throw err;
        stalls = state.written > before ? 1 : stalls + 1;
        if (stalls > DOWNLOAD_ATTEMPTS) throw err;
        const retryInMs = fullJitter(stalls - 1, 200, 5_000);
        this.log('download-interrupted', {
          version: state.pin?.version,
          offset: state.written,
          ...describeError(err),
          retryInMs: Math.round(retryInMs),
        });
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
   * the partial file; updates `state` as bytes land so a retry knows where to resume.
   */
  private async downloadAttempt(state: DownloadState, signal: AbortSignal | undefined): Promise<void> {
    const call = this.client.downloadExport(
      DownloadExportRequest.fromPartial({ logicalId: this.options.logicalId, version: state.pin?.version ?? '', offset: state.written }),
      this.metadata(),
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
          const pin: Pin = { version: header.version, sizeBytes: header.sizeBytes, sha256: header.sha256.toLowerCase() };
          if (state.pin) {
            if (pin.version !== state.pin.version || pin.sizeBytes !== state.pin.sizeBytes || pin.sha256 !== state.pin.sha256) {
              throw new PinMismatchError(`export ${state.pin.version} changed between requests (size ${pin.sizeBytes}, sha256 ${pin.sha256})`);
            }
          } else {
            // The pin file must never describe bytes of another version: drop the old partial first.
            await this.discardPartial();
            await writeFileAtomic(this.pinPath, JSON.stringify(pin));
            state.pin = pin;
          }
          this.log('download-started', { version: pin.version, sizeBytes: pin.sizeBytes, offset: state.written });
          file = await open(this.partPath, state.written === 0 ? 'w' : 'r+');
        } else if (kind?.$case === 'chunk') {
          const chunk = kind.value;
          if (!file || !state.pin) throw new ExportProtocolError('DownloadExport sent a chunk before the header');
          if (chunk.offset !== state.written) {
            throw new ExportProtocolError(`DownloadExport sent a chunk at offset ${chunk.offset}, expected ${state.written}`);
          }
          if (state.written + chunk.data.length > state.pin.sizeBytes) {
            throw new ExportProtocolError(`DownloadExport sent more than the announced ${state.pin.sizeBytes} bytes`);
          }
          await file.write(chunk.data, 0, chunk.data.length, chunk.offset);
          state.written += chunk.data.length;
        }
      }
      if (!file || !state.pin) throw new ExportProtocolError('DownloadExport ended without a header');
      if (state.written < state.pin.sizeBytes) {
        throw new IncompleteStreamError(`DownloadExport ended at byte ${state.written} of ${state.pin.sizeBytes}`);
      }
      await file.sync();
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
      throw new Error(
        `downloaded export ${pin.version} failed verification: ${size} bytes with sha256 ${sha256}, header announced ${pin.sizeBytes} bytes with sha256 ${pin.sha256}`,
      );
    }
    await rename(this.partPath, this.options.dbPath);
    await fsyncDir(path.dirname(this.options.dbPath));
    await rm(this.pinPath, { force: true });
    await writeFileAtomic(this.versionPath, `${pin.version}\n`);
    this.held = pin.version;
    this.log('installed', { version: pin.version, bytes: size, sha256 });
    return size;
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

  private metadata(): Metadata {
    const metadata = new Metadata();
    metadata.set('x-api-key', this.token);
    return metadata;
  }

  private unary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      method.call(this.client, request, this.metadata(), { deadline: Date.now() + UNARY_DEADLINE_MS }, (err, response) =>
        err ? reject(err) : resolve(response),
      );
    });
  }
}

/** The trimmed token in `file`; an Error naming the file if unreadable or not a well-formed `tbd_` token. */
async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read token file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const token = text.trim();
  if (!isWellFormedDaemonToken(token)) {
    throw new Error(`token file ${file} does not hold a well-formed daemon token (one line, tbd_..., valid checksum)`);
  }
  return token;
}

/** Epoch ms at 80 % of the token's lifetime; never when the server gave no lifetime. */
function rotationTime(info: Token): number {
  const created = info.createTime?.getTime();
  const expires = info.expireTime?.getTime();
  if (created === undefined || expires === undefined) return Number.POSITIVE_INFINITY;
  return created + ROTATE_AT_FRACTION * (expires - created);
}

function isServiceError(err: unknown): err is ServiceError {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number';
}

function isAuthError(err: unknown): boolean {
  return isServiceError(err) && (err.code === status.UNAUTHENTICATED || err.code === status.PERMISSION_DENIED);
}

/** The pinned bytes cannot be resumed: start again from zero with the latest version. */
function isRestart(err: unknown): boolean {
  return err instanceof PinMismatchError || (isServiceError(err) && (err.code === status.FAILED_PRECONDITION || err.code === status.OUT_OF_RANGE));
}

function isTransient(err: unknown): boolean {
  return err instanceof IncompleteStreamError || (isServiceError(err) && !isAuthError(err));
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function isPin(value: unknown): value is Pin {
  const pin = value as Partial<Pin> | null;
  return typeof pin?.version === 'string' && Number.isSafeInteger(pin.sizeBytes) && typeof pin.sha256 === 'string';
}

/**
 * `{ code, message }` of an error for logs: `code` is the gRPC status name (e.g. `UNAVAILABLE`)
 * for a ServiceError, `OK` for a stream that ended without error, absent otherwise.
 */
export function describeError(err: unknown): { code?: string; message: string } {
  if (err === undefined) return { code: 'OK', message: 'stream ended' };
  if (isServiceError(err)) return { code: status[err.code] ?? String(err.code), message: err.details || err.message };
  return { message: err instanceof Error ? err.message : String(err) };
}

async function digestFile(file: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

/** Makes a rename in `dir` durable. */
async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces `file` with `data` so a reader sees the old or the new content, never a mix: temp + fsync + rename. */
async function writeFileAtomic(file: string, data: string, mode = 0o644): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await fsyncDir(path.dirname(file));
}
