/**
 * Load process for `delta-fanout` (forked, talks to the parent over IPC): `daemons` simulated
 * daemons, each a WatchVersion stream (spread over `connections` channels) holding the scope's
 * current file. On the next version each downloads it: naming the file it holds (`mayDelta`: the
 * answer may be a delta) or not (always the whole file). Every download is verified in memory: a
 * whole file's SHA-256 is computed from its chunks; a delta is applied to the file the daemon holds
 * and the result's SHA-256 checked against the header. Daemons holding the same file get the same
 * delta for the same version: each distinct (held file, delta) is applied once and its result
 * remembered by the delta's SHA-256 (which every daemon computes), so the load process spends its
 * CPU on receiving, as 10,000 real devices would each spend their own. Each daemon has its own
 * token when `tokens` has one per daemon (daemon i uses tokens[i % tokens.length]). A download
 * refused or broken in a way the shipped client retries (`isRetryable`: DOWNLOADS_BUSY under
 * admission control) is tried again after `retryDelayMs`, as DaemonSync does.
 *
 *   -> {type:'ready', version, errors}   all streams open, the current file held
 *   <- {type:'go', expect?}              arm; the parent's change follows. `expect`: the daemons that
 *                                        will be told a new version (default all; in a staged
 *                                        rollout only the step's new cohort is)
 *   -> {type:'result', done, bytes, errors, deltas, refused, cpuMs}
 *        when every expected daemon holds its new file (or after RESULT_TIMEOUT_MS): done[i] = epoch
 *        ms daemon i held it (null if never), bytes = payload bytes received in all,
 *        deltas = downloads that were deltas, refused = tries refused and retried
 *   <- {type:'stop'}
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { isRetryable, retryDelayMs } from '@titanbot/daemon-client';
import { DaemonServiceClient, ExportEncoding, type DownloadExportResponse, type ExportHeader } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { applyDelta } from 'fossil-delta';

/** What delta-daemons.ts is told (one JSON argument). */
export interface DeltaDaemonsConfig {
  address: string;
  /** Daemon tokens; or, in `tokensFile`, one per line (10,000 do not fit in a command line). */
  tokens: string[];
  tokensFile?: string;
  daemons: number;
  connections: number;
  logicalId: number;
  mayDelta: boolean;
}

/** The load's 'result' message (see above). */
export interface DeltaDaemonsResult {
  type: 'result';
  done: (number | null)[];
  bytes: number;
  errors: number;
  deltas: number;
  refused: number;
  cpuMs: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as DeltaDaemonsConfig;
if (config.tokensFile) config.tokens = readFileSync(config.tokensFile, 'utf8').split('\n').filter(Boolean);
const RESULT_TIMEOUT_MS = 300_000;
const epochMs = (): number => performance.timeOrigin + performance.now();
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const send = (message: unknown): void => void process.send!(message);

const clients = Array.from({ length: config.connections }, () => new DaemonServiceClient(config.address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
const metadata = config.tokens.map((t) => {
  const md = new Metadata();
  md.set('x-api-key', t);
  return md;
});
const channel = (i: number): { client: DaemonServiceClient; md: Metadata } => ({ client: clients[i % clients.length]!, md: metadata[i % metadata.length]! });

/** A file some daemon holds. */
interface Held {
  version: string;
  sha256: string;
  bytes: Buffer;
}
/** Every file some daemon holds or has just downloaded, by version; `holds[i]`: the version daemon i holds. */
const files = new Map<string, Held>();
const holds: string[] = [];
/** Result SHA-256 by `held version/delta SHA-256`. */
const applied = new Map<string, string>();
/** What each daemon of this round downloaded (it holds it from the report on). */
const downloaded = new Map<number, string>();
/** Versions a whole-file download of this round keeps the bytes of (one download each). */
const keeping = new Set<string>();
const isDelta = (header: ExportHeader): boolean => header.encoding === ExportEncoding.EXPORT_ENCODING_FOSSIL_DELTA;
const keepOne = (header: ExportHeader): boolean =>
  isDelta(header) || (!files.has(header.version) && !keeping.has(header.version) && (keeping.add(header.version), true));

let armed = false;
let done = new Float64Array(config.daemons).fill(Number.NaN);
let expected = config.daemons;
let received = 0;
let bytes = 0;
let deltas = 0;
let refused = 0;
let errors = 0;
let cpuAtGo: NodeJS.CpuUsage | undefined;
let timeout: NodeJS.Timeout | undefined;
let stopping = false;

/**
 * One DownloadExport, hashed as it arrives: the header, and the payload when `keep(header)` says
 * so (deltas always; of 10,000 whole files only one is kept, or memory would hold them all).
 */
function fetchExport(i: number, held: Held | undefined, keep: (header: ExportHeader) => boolean): Promise<{ header: ExportHeader; sha256: string; size: number; payload?: Buffer }> {
  const { client, md } = channel(i);
  return new Promise((resolve, reject) => {
    const call = client.downloadExport(
      { logicalId: config.logicalId, version: '', offset: 0, heldVersion: held?.version ?? '', heldSha256: held?.sha256 ?? '', acceptPublicUrl: false },
      md,
    );
    const hash = createHash('sha256');
    const parts: Buffer[] = [];
    let header: ExportHeader | undefined;
    let keeping = false;
    let size = 0;
    call.on('data', (m: DownloadExportResponse) => {
      if (m.kind?.$case === 'header') {
        header = m.kind.value;
        keeping = keep(header);
      } else if (m.kind?.$case === 'chunk') {
        hash.update(m.kind.value.data);
        size += m.kind.value.data.length;
        if (keeping) parts.push(m.kind.value.data);
      }
    });
    call.on('error', (err: ServiceError) => reject(err));
    call.on('end', () => (header ? resolve({ header, sha256: hash.digest('hex'), size, ...(keeping ? { payload: Buffer.concat(parts) } : {}) }) : reject(new Error('no header'))));
  });
}

/** Daemon i's download of the new version, tried again while the answer is "not now" (and the round lasts). */
async function fetchRetrying(i: number): Promise<Awaited<ReturnType<typeof fetchExport>>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fetchExport(i, config.mayDelta ? files.get(holds[i]!) : undefined, keepOne);
    } catch (err) {
      if (!isRetryable(err) || !armed) throw err;
      if ((err as ServiceError).code === status.RESOURCE_EXHAUSTED) refused++;
      await new Promise((r) => setTimeout(r, retryDelayMs(attempt, err)));
    }
  }
}

/** Daemon i downloads the new version and verifies it; resolves when it holds it. */
async function update(i: number): Promise<void> {
  const base = files.get(holds[i]!)!;
  const got = await fetchRetrying(i);
  bytes += got.size;
  if (isDelta(got.header)) {
    deltas++;
    const key = `${base.version}/${got.sha256}`;
    let result = applied.get(key);
    if (result === undefined) {
      const file = Buffer.from(applyDelta(base.bytes, got.payload!));
      result = sha256(file);
      applied.set(key, result);
      if (!files.has(got.header.version)) files.set(got.header.version, { version: got.header.version, sha256: result, bytes: file });
    }
    if (result !== got.header.sha256) throw new Error(`delta result ${result} is not ${got.header.sha256}`);
  } else {
    if (got.sha256 !== got.header.sha256) throw new Error(`file ${got.sha256} is not ${got.header.sha256}`);
    if (got.payload && !files.has(got.header.version)) files.set(got.header.version, { version: got.header.version, sha256: got.sha256, bytes: got.payload });
  }
  downloaded.set(i, got.header.version);
}

function report(): void {
  if (!armed) return;
  armed = false;
  clearTimeout(timeout);
  const cpu = process.cpuUsage(cpuAtGo);
  send({ type: 'result', done: Array.from(done, (t) => (Number.isNaN(t) ? null : t)), bytes, errors, deltas, refused, cpuMs: (cpu.user + cpu.system) / 1000 });
  // From here on each daemon that downloaded holds what it downloaded.
  for (const [i, version] of downloaded) holds[i] = version;
  // Files no daemon holds any more are dropped.
  const held = new Set(holds);
  for (const version of files.keys()) if (!held.has(version)) files.delete(version);
}

async function open(): Promise<void> {
  const first = await fetchExport(0, undefined, () => true);
  files.set(first.header.version, { version: first.header.version, sha256: first.sha256, bytes: first.payload! });
  for (let i = 0; i < config.daemons; i++) {
    holds.push(first.header.version);
    const { client, md } = channel(i);
    const call = client.watchVersion({ logicalId: config.logicalId, knownVersion: first.header.version }, md);
    call.on('data', () => {
      if (!armed || !Number.isNaN(done[i]!)) return;
      update(i).then(
        () => {
          done[i] = epochMs();
          if (++received === expected) report();
        },
        (err: unknown) => {
          errors++;
          if (errors <= 3) console.error(`delta-daemons: daemon ${i}: ${err instanceof Error ? err.message : String(err)}`);
        },
      );
    });
    call.on('error', (err: ServiceError) => {
      if (stopping) return;
      errors++;
      if (errors <= 3) console.error(`delta-daemons: stream ${i}: ${err.code} ${err.details}`);
    });
  }
  // Streams go out before these on the same connections: once every channel answers a call, the server has them.
  await Promise.all(
    clients.map((client, i) => new Promise((resolve, reject) => client.checkVersion({ logicalId: config.logicalId, knownVersion: '' }, channel(i).md, (err) => (err ? reject(err) : resolve(undefined))))),
  );
  await new Promise((r) => setTimeout(r, 500));
  send({ type: 'ready', version: first.header.version, errors });
}

process.on('message', (message: { type: string; expect?: number[] }) => {
  if (message.type === 'go') {
    done = new Float64Array(config.daemons).fill(Number.NaN);
    expected = message.expect?.length ?? config.daemons;
    received = 0;
    bytes = 0;
    deltas = 0;
    refused = 0;
    downloaded.clear();
    keeping.clear();
    cpuAtGo = process.cpuUsage();
    armed = true;
    timeout = setTimeout(report, RESULT_TIMEOUT_MS);
  } else if (message.type === 'stop') {
    stopping = true;
    for (const c of clients) c.close();
    process.disconnect();
    setTimeout(() => process.exit(0), 200).unref();
  }
});
process.on('disconnect', () => {
  if (!stopping) process.exit(0);
});

open().catch((err: unknown) => {
  console.error('delta-daemons:', err);
  process.exit(1);
});
