import { setTimeout as sleep } from 'node:timers/promises';
import { credentials, Metadata, status, type CallOptions, type Client, type ServiceError } from '@grpc/grpc-js';
import { AccountServiceClient } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { DaemonTokenServiceClient } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { DeviceServiceClient } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { HabitServiceClient } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { apiKeyMetadata, unaryCall } from '@titanbot/service-kit/grpc-client';

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => unknown;

const CALL_DEADLINE_MS = 30_000;
const ATTEMPTS = 5;
/** Worth another try: the write service serializes writers, so a loaded server answers these. */
const RETRYABLE = new Set<number>([status.ABORTED, status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);

/** The admin stubs the demo uses, sharing one channel, plus a promise-returning call with retries. */
export class AdminApi {
  readonly accounts: AccountServiceClient;
  readonly devices: DeviceServiceClient;
  readonly habits: HabitServiceClient;
  readonly tokens: DaemonTokenServiceClient;
  /** Admin calls made so far, retries included: the rate shown in progress lines. */
  calls = 0;

  constructor(server: string, private readonly token: string) {
    this.accounts = new AccountServiceClient(server, credentials.createInsecure());
    // Later stubs reuse the first one's channel rather than opening four connections.
    const channelOverride = this.accounts.getChannel();
    this.devices = new DeviceServiceClient(server, credentials.createInsecure(), { channelOverride });
    this.habits = new HabitServiceClient(server, credentials.createInsecure(), { channelOverride });
    this.tokens = new DaemonTokenServiceClient(server, credentials.createInsecure(), { channelOverride });
  }

  /**
   * Calls `method` on `client` with the admin token, retrying ABORTED, UNAVAILABLE and
   * DEADLINE_EXCEEDED with backoff. Safe for creates only when the request carries a request_id.
   */
  async call<Req, Res>(client: Client, method: UnaryMethod<Req, Res>, request: Req): Promise<Res> {
    for (let attempt = 1; ; attempt++) {
      this.calls++;
      try {
        return await unaryCall(client, method, request, apiKeyMetadata(this.token), { deadline: Date.now() + CALL_DEADLINE_MS });
      } catch (err) {
        const code = (err as Partial<ServiceError>).code;
        if (attempt >= ATTEMPTS || code === undefined || !RETRYABLE.has(code)) throw err;
        await sleep(100 * 2 ** attempt * Math.random());
      }
    }
  }

  close(): void {
    this.accounts.close();
  }
}

/**
 * Reports progress on stderr: one line rewritten in place on a TTY, else a line per 10 % so logs
 * stay short. The rate counts admin calls, which is what the write service actually serves.
 */
export class Progress {
  private done = 0;
  private lastDecile = 0;
  private readonly started = performance.now();
  private readonly callsAtStart: number;

  constructor(private readonly label: string, private readonly total: number, private readonly api: AdminApi) {
    this.callsAtStart = api.calls;
  }

  tick(): void {
    this.done++;
    const decile = Math.floor((this.done * 10) / this.total);
    if (process.stderr.isTTY) {
      if (this.done % 10 === 0 || this.done === this.total) process.stderr.write(`\r\x1b[K${this.line()}`);
    } else if (decile > this.lastDecile) {
      this.lastDecile = decile;
      process.stderr.write(`${this.line()}\n`);
    }
  }

  /** Ends the in-place line on a TTY; returns the phase's seconds and calls per second. */
  finish(): { seconds: number; rate: number } {
    if (process.stderr.isTTY && this.total > 0) process.stderr.write('\n');
    return { seconds: this.seconds(), rate: this.rate() };
  }

  private line(): string {
    const pct = Math.floor((this.done * 100) / this.total);
    return `${this.label}: ${this.done}/${this.total} (${pct}%) ${this.seconds().toFixed(1)} s, ${this.rate().toFixed(0)} calls/s`;
  }

  private seconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  private rate(): number {
    return (this.api.calls - this.callsAtStart) / Math.max(this.seconds(), 0.001);
  }
}

/**
 * Runs `task` over `items` with at most `concurrency` in flight, ticking `progress` per item.
 * Resolves with the phase's duration and call rate; rejects with the first failure once the
 * in-flight tasks have settled, so no call outlives it.
 */
export async function forEachBounded<T>(
  items: readonly T[],
  concurrency: number,
  progress: Progress,
  task: (item: T) => Promise<void>,
): Promise<{ seconds: number; rate: number }> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await task(item);
        progress.tick();
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failure) throw failure.error;
  return progress.finish();
}
