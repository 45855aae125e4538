import { vi } from 'vitest';
import { main } from './cli.js';

/** What one in-process titanctl run printed, and its exit code. */
export interface Captured {
  code: number;
  out: string;
  err: string;
}

/**
 * Runs titanctl in-process (`main(argv, now)`) and captures stdout and stderr; `onStderr` sees
 * each stderr write as it happens (e.g. the device-flow prompt a test must act on).
 */
export async function runCaptured(argv: string[], options: { now?: () => number; onStderr?: (text: string) => void } = {}): Promise<Captured> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err += String(chunk);
    options.onStderr?.(String(chunk));
    return true;
  });
  try {
    return { code: await main(argv, options.now), out, err };
  } finally {
    vi.mocked(process.stdout.write).mockRestore();
    vi.mocked(process.stderr.write).mockRestore();
  }
}
