import { readFile } from 'node:fs/promises';
import type { Metadata } from '@grpc/grpc-js';
import { GetTokenRequest, RotateTokenRequest, type DaemonServiceClient, type Token } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { fullJitter, sleep } from '@titanbot/service-kit/backoff';
import { isWellFormedDaemonToken, SHOWN_PREFIX_CHARS } from '@titanbot/service-kit/daemon-token';
import { apiKeyMetadata, unaryCall, type UnaryMethod } from '@titanbot/service-kit/grpc-client';
import { MAX_TIMER_MS } from '@titanbot/service-kit/timers';
import { injectTraceparent } from '@titanbot/service-kit/tracing';
import { describeError } from './errors.js';
import { writeFileAtomic } from './files.js';
import type { SyncLogger } from './sync-logger.js';

/** Deadline of every unary call (ms). */
const UNARY_DEADLINE_MS = 30_000;
/** A token is rotated once this fraction of its lifetime has passed. */
const ROTATE_AT_FRACTION = 0.8;

/**
 * The daemon's token: read from `tokenFile`, sent with every call, rotated at 80 % of its lifetime
 * (the new token is used at once and written back with mode 0600, atomically), and re-read when
 * the server refuses it (the operator may have replaced the file).
 */
export class TokenKeeper {
  private token = '';
  /** Bumped on every token change, so a slow reload cannot undo a rotation. */
  private generation = 0;
  /** The token's lifetime as the server last told it; undefined until asked. */
  private info: Token | undefined;

  constructor(
    private readonly client: DaemonServiceClient,
    private readonly tokenFile: string,
    private readonly log: SyncLogger,
  ) {}

  /** Reads the token file. Rejects with an Error naming the file if unreadable or not a well-formed `tbd_` token. */
  async load(): Promise<void> {
    this.set(await readToken(this.tokenFile));
  }

  /** Calls a unary DaemonService method with the current token and the standard deadline. */
  call<Req, Res>(method: UnaryMethod<Req, Res>, request: Req): Promise<Res> {
    return unaryCall(this.client, method, request, this.metadata(), { deadline: Date.now() + UNARY_DEADLINE_MS });
  }

  /** Metadata carrying the current token, and the caller's trace context when the daemon traces (OpenTelemetry). */
  metadata(): Metadata {
    return injectTraceparent(apiKeyMetadata(this.token));
  }

  /** Asks the server for the token's lifetime, and rotates now if it is past 80 % (a failed rotation is logged, not raised). */
  async rotateIfDue(): Promise<void> {
    this.info = await this.call(this.client.getToken, GetTokenRequest.fromPartial({}));
    if (Date.now() >= rotationTime(this.info)) await this.rotate().catch((err: unknown) => this.log('token-rotation-failed', describeError(err)));
  }

  /**
   * Sleeps until the token's rotation time, rotates, repeats, until `signal` aborts. A failure is
   * retried with backoff; once the token has expired the lifetime is fetched again, in case the
   * operator replaced the file.
   */
  async rotationLoop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        this.info ??= await this.call(this.client.getToken, GetTokenRequest.fromPartial({}));
        const wait = rotationTime(this.info) - Date.now();
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
        if (Date.now() >= (this.info?.expireTime?.getTime() ?? 0)) {
          this.info = undefined;
          await this.reload();
        }
        await sleep(retryInMs, signal, false);
      }
    }
  }

  /** Picks up a token file the operator replaced; keeps the current token if the file is unusable. */
  async reload(): Promise<void> {
    const generation = this.generation;
    try {
      const token = await readToken(this.tokenFile);
      if (generation !== this.generation || token === this.token) return;
      this.set(token);
      this.info = undefined;
      this.log('token-reloaded', { prefix: token.slice(0, SHOWN_PREFIX_CHARS) });
    } catch (err) {
      this.log('token-file-invalid', describeError(err));
    }
  }

  /** RotateToken, then switch to the new token and persist it (memory first: the old one is dying). */
  private async rotate(): Promise<void> {
    const response = await this.call(this.client.rotateToken, RotateTokenRequest.fromPartial({}));
    if (!isWellFormedDaemonToken(response.token)) throw new Error('RotateToken returned a malformed token');
    this.set(response.token);
    this.info = response.tokenInfo;
    await writeFileAtomic(this.tokenFile, `${response.token}\n`, 0o600);
    this.log('token-rotated', {
      prefix: response.token.slice(0, SHOWN_PREFIX_CHARS),
      expireTime: response.tokenInfo?.expireTime?.toISOString(),
      previousExpireTime: response.previousExpireTime?.toISOString(),
    });
  }

  private set(token: string): void {
    if (token === this.token) return;
    this.token = token;
    this.generation++;
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
