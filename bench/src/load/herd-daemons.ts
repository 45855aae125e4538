/**
 * Load process for `herd` (forked, IPC): `daemons` simulated daemons (spread over `connections`
 * channels) that all need the scope's whole file at once, plus `syncs` real DaemonSync clients
 * with empty databases. A simulated daemon downloads the file (hashed as it arrives, checked
 * against the header), and on a refusal or a broken stream waits as the shipped client does
 * (`retryDelayMs`: the RetryInfo delay when the server gives one, else full jitter) and tries again,
 * until GIVE_UP_MS. DaemonSync clients do their own retrying (syncOnce). With `acceptPublicUrl`, a
 * simulated daemon asks for a URL and, when the header carries one, fetches the file from it (the
 * CDN benchmark); with `awaitNewVersion`, 'go' first waits (CheckVersion every 5 ms) until the
 * scope's version is not the one of 'ready' (the parent changes it), so every daemon fetches a file
 * no cache has seen.
 *
 *   -> {type:'ready'}          channels connected, the file built on the replica
 *   <- {type:'go'}             every daemon starts at once
 *   -> {type:'result', done, syncsDone, attempts, refused, errors, gaveUp, grpcBytes, urlBytes}
 *        done[i] = epoch ms daemon i held a verified file (null if it gave up); bytes the simulated
 *        daemons received in chunks and from URLs
 *   <- {type:'stop'}
 */
import { createHash, type Hash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { DaemonServiceClient, DaemonSync, isRetryable, retryDelayMs, type DownloadExportResponse } from '@titanbot/daemon-client';
import type { ExportHeader } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';

/** What herd-daemons.ts is told (one JSON argument). */
export interface HerdDaemonsConfig {
  address: string;
  tokens: string[];
  daemons: number;
  connections: number;
  syncs: number;
  logicalId: number;
  dir: string;
  acceptPublicUrl?: boolean;
  awaitNewVersion?: boolean;
}

const config = JSON.parse(process.argv[2] ?? '{}') as HerdDaemonsConfig;
/** A daemon that does not hold the file this long after 'go' gives up (counted, never hidden). */
const GIVE_UP_MS = 300_000;
const epochMs = (): number => performance.timeOrigin + performance.now();
const send = (message: unknown): void => void process.send!(message);

const clients = Array.from({ length: config.connections }, () => new DaemonServiceClient(config.address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
const metadata = config.tokens.map((t) => {
  const md = new Metadata();
  md.set('x-api-key', t);
  return md;
});
let attempts = 0;
let refused = 0;
let errors = 0;
let grpcBytes = 0;
let urlBytes = 0;
let readyVersion = '';

/** One whole-file download by daemon `i` (from the URL when one is offered), verified; rejects with the call's or the fetch's error. */
function fetchFile(i: number): Promise<{ version: string }> {
  const client = clients[i % clients.length]!;
  return new Promise((resolve, reject) => {
    const request = { logicalId: config.logicalId, version: '', offset: 0, heldVersion: '', heldSha256: '', acceptPublicUrl: config.acceptPublicUrl ?? false };
    const call = client.downloadExport(request, metadata[i % metadata.length]!);
    const hash = createHash('sha256');
    let header: ExportHeader | undefined;
    call.on('data', (m: DownloadExportResponse) => {
      if (m.kind?.$case === 'header') header = m.kind.value;
      else if (m.kind?.$case === 'chunk') {
        hash.update(m.kind.value.data);
        grpcBytes += m.kind.value.data.length;
      }
    });
    call.on('error', reject);
    call.on('end', () => {
      const fetched = header?.publicUrl ? fetchUrl(header.publicUrl, hash) : Promise.resolve();
      fetched.then(() => {
        const got = hash.digest('hex');
        if (got === header?.sha256) resolve({ version: header.version });
        else reject(new Error(`file ${got} is not ${header?.sha256}`));
      }, reject);
    });
  });
}

/** The body at `url` into `hash`; rejects on a status other than 200. */
async function fetchUrl(url: string, hash: Hash): Promise<void> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`GET ${url.split('?')[0]}: HTTP ${response.status}`);
  for await (const piece of response.body as AsyncIterable<Uint8Array>) {
    hash.update(piece);
    urlBytes += piece.length;
  }
}

/** Resolves once CheckVersion tells a version other than the one the file of 'ready' had. */
async function newVersion(): Promise<void> {
  for (;;) {
    const version = await new Promise<string>((resolve, reject) =>
      clients[0]!.checkVersion({ logicalId: config.logicalId, knownVersion: '' }, metadata[0]!, (err, res) => (err ? reject(err) : resolve(res!.version))),
    );
    if (version !== readyVersion) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Daemon `i` until it holds the file or gives up: epoch ms it held it, or null. */
async function herdDaemon(i: number, startedAt: number): Promise<number | null> {
  for (let attempt = 0; ; attempt++) {
    attempts++;
    try {
      await fetchFile(i);
      return epochMs();
    } catch (err) {
      if ((err as ServiceError).code === status.RESOURCE_EXHAUSTED) refused++;
      else if (errors++ < 3) console.error(`herd-daemons: daemon ${i}: ${err instanceof Error ? err.message : String(err)}`);
      if (!isRetryable(err) || epochMs() - startedAt > GIVE_UP_MS) return null;
      await new Promise((r) => setTimeout(r, retryDelayMs(attempt, err)));
    }
  }
}

/** DaemonSync `i` with an empty database: its own syncOnce, retries and all. */
async function realDaemon(i: number): Promise<number | null> {
  const tokenFile = path.join(config.dir, `token-${i}.txt`);
  writeFileSync(tokenFile, `${config.tokens[i % config.tokens.length]}\n`, { mode: 0o600 });
  const sync = new DaemonSync({ server: config.address, tokenFile, dbPath: path.join(config.dir, `daemon-${i}.sqlite`), logicalId: config.logicalId, timeoutMs: GIVE_UP_MS });
  try {
    const result = await sync.syncOnce();
    return result.changed ? epochMs() : null;
  } catch (err) {
    console.error(`herd-daemons: DaemonSync ${i}: ${err instanceof Error ? err.message : String(err)}`);
    return null;
  } finally {
    sync.close();
  }
}

async function open(): Promise<void> {
  // One download builds the file on the replica; each channel then answers once, so all are connected.
  readyVersion = (await fetchFile(0)).version;
  [grpcBytes, urlBytes] = [0, 0];
  await Promise.all(clients.map((c, i) => new Promise((resolve, reject) => c.checkVersion({ logicalId: config.logicalId, knownVersion: '' }, metadata[i % metadata.length]!, (err) => (err ? reject(err) : resolve(undefined))))));
  send({ type: 'ready' });
}

/** Every daemon at once (after the new version, with awaitNewVersion); then the result. */
async function go(): Promise<void> {
  if (config.awaitNewVersion) await newVersion();
  const startedAt = epochMs();
  const [done, syncsDone] = await Promise.all([
    Promise.all(Array.from({ length: config.daemons }, (_, i) => herdDaemon(i, startedAt))),
    Promise.all(Array.from({ length: config.syncs }, (_, i) => realDaemon(i))),
  ]);
  const gaveUp = done.filter((t) => t === null).length + syncsDone.filter((t) => t === null).length;
  send({ type: 'result', done, syncsDone, attempts, refused, errors, gaveUp, grpcBytes, urlBytes });
}

process.on('message', (message: { type: string }) => {
  if (message.type === 'go') {
    void go();
  } else if (message.type === 'stop') {
    for (const c of clients) c.close();
    process.disconnect();
    setTimeout(() => process.exit(0), 200).unref();
  }
});

open().catch((err: unknown) => {
  console.error('herd-daemons:', err);
  process.exit(1);
});
