import type { ServiceError } from '@grpc/grpc-js';
import type { LoadResult } from '../lib/peer.js';
import { percentile } from '../lib/stats.js';

/**
 * The measured window of a load generator in its own process (the protocol of
 * bench/src/lib/peer.ts runLoad): warm-up, then 'measuring' over IPC, calls recorded for
 * `durationMs`, then 'measured', and once the loops have stopped, one LoadResult line on stdout.
 */
export class Recorder {
  phase: 'warmup' | 'measuring' | 'done' = 'warmup';
  private readonly latencies: number[] = [];
  private calls = 0;
  private errors = 0;
  private firstError: string | undefined;
  private running = 0;
  private result: LoadResult | undefined;

  constructor(warmupMs: number, durationMs: number) {
    setTimeout(() => {
      this.phase = 'measuring';
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      process.send?.({ type: 'measuring' });
      setTimeout(() => {
        this.phase = 'done';
        const seconds = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(cpu0);
        process.send?.({ type: 'measured' });
        const sample = Float64Array.from(this.latencies);
        this.result = {
          calls: this.calls,
          seconds,
          rps: this.calls / seconds,
          p50Ms: percentile(sample, 50),
          p99Ms: percentile(sample, 99),
          errors: this.errors,
          generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
          ...(this.firstError ? { firstError: this.firstError } : {}),
        };
        if (this.running === 0) this.report();
        // Calls that never answer must not hold the report.
        setTimeout(() => this.report(), 5_000).unref();
      }, durationMs);
    }, warmupMs);
  }

  /** Runs `step` over and over in `loops` loops until the window closes; `step` calls `next` when done. */
  loop(loops: number, step: (next: () => void) => void): void {
    const next = (): void => {
      if (this.phase !== 'done') return step(next);
      if (--this.running === 0 && this.result) this.report();
    };
    for (let i = 0; i < loops; i++) {
      this.running++;
      step(next);
    }
  }

  /** Counts a call that started at `startedMs` (performance.now()) if the window is open. */
  record(err: ServiceError | null, startedMs: number): void {
    if (this.phase !== 'measuring') return;
    this.calls++;
    if (err) {
      this.errors++;
      this.firstError ??= `${err.code} ${err.details}`;
    } else this.latencies.push(performance.now() - startedMs);
  }

  private report(): void {
    process.stdout.write(`${JSON.stringify(this.result)}\n`, () => process.exit(0));
  }
}
