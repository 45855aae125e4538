import { fork } from 'node:child_process';
import path from 'node:path';
import { cpuSeconds, measureCpu } from './proc.js';
import { freePort } from '@titanbot/service-kit/free-port';
import { ROOT, startService, type ServiceProcess } from './system.js';

/**
 * Starts a reference peer (a compiled script under bench/dist/peers) as its own process on a free
 * port, passed as PEER_ADDR, and waits until its grpc.health answers SERVING.
 */
export async function startPeer(script: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  const address = `127.0.0.1:${await freePort()}`;
  return startService(script, { ...env, PEER_ADDR: address }, address);
}

/** What bench/src/load/check-version.ts is told (one JSON argument). */
export interface LoadConfig {
  /** Targets; channel i goes to targets[i % targets.length]. */
  targets: string[];
  channels: number;
  /** In-flight calls in all (spread evenly over the channels). */
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** Daemon tokens; channel i presents tokens[i % tokens.length]. Empty: no x-api-key. */
  tokens: string[];
  /** The scope asked about; undefined = the global scope. */
  logicalId?: number;
  /** TLS, verifying the targets with this CA (PEM); unset: plaintext. */
  caFile?: string;
}

/** What the load generator reports for its measured window. */
export interface LoadResult {
  calls: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** The load generator's own CPU seconds (user + system) over the measured window. */
  generatorCpuSeconds: number;
  firstError?: string;
}

/** Runs the CheckVersion load generator (bench/src/load/check-version.ts); see runLoad. */
export const runCheckVersionLoad = (config: LoadConfig, servingPids: readonly number[], includePostgres: boolean): Promise<{ load: LoadResult; cpuSeconds: number }> =>
  runLoad('bench/dist/load/check-version.js', config, servingPids, includePostgres);

/**
 * Runs a load generator (`script`, given `config` as its one JSON argument) in its own process and
 * measures the CPU of `servingPids` (plus every `postgres` process when `includePostgres`) over
 * exactly its measured window: the generator says over IPC when warm-up ends ('measuring') and
 * when the window closes ('measured'), then prints its LoadResult line.
 */
export async function runLoad(script: string, config: unknown, servingPids: readonly number[], includePostgres: boolean): Promise<{ load: LoadResult; cpuSeconds: number }> {
  const child = fork(path.join(ROOT, script), [JSON.stringify(config)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const measuring = new Promise<void>((resolve, reject) => {
    child.on('message', (m: { type?: string }) => m.type === 'measuring' && resolve());
    void exited.then((code) => reject(new Error(`load generator exited with ${code} before measuring`)));
  });
  await measuring;
  const { result: code, cpuSeconds: cpu } = await measureCpu(servingPids, includePostgres, async () => {
    // The window closes when the generator stops counting; it then prints and exits.
    await new Promise<void>((resolve) => child.on('message', (m: { type?: string }) => m.type === 'measured' && resolve()));
    return exited;
  });
  if (code !== 0) throw new Error(`load generator exited with ${code}`);
  const line = stdout.trim().split('\n').at(-1) ?? '';
  return { load: JSON.parse(line) as LoadResult, cpuSeconds: cpu };
}

export { cpuSeconds };
