import { credentials, makeGenericClientConstructor, Metadata, type ChannelOptions, type ClientReadableStream } from '@grpc/grpc-js';
import { DownloadExportRequest, type DownloadExportResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { DaemonClient } from '@titanbot/daemon-client';
import { RAW_STREAM_SERVICE } from '../peers/raw-stream-server.js';

/** What the load process is told (argv[2], JSON). */
export interface DownloadLoadOptions {
  target: string;
  token: string;
  logicalId: number;
  /** daemon = DaemonService.DownloadExport (latest version); raw = the raw reference stream. */
  mode: 'daemon' | 'raw';
  /** Downloads in flight at once, spread over `connections` channels. */
  concurrency: number;
  connections: number;
  /** Run at least this long (s) and until `minCalls` calls have finished, but never past `maxSeconds`. */
  seconds: number;
  minCalls: number;
  maxSeconds: number;
  /** HTTP/2 flow-control window (bytes); 0 = grpc-js's default (64 KiB). */
  windowBytes: number;
}

/** What it prints (one JSON line on stdout). */
export interface DownloadLoadResult {
  calls: number;
  bytes: number;
  seconds: number;
  mbPerSec: number;
  callsPerSec: number;
  /** Bytes of the last complete download (every call must get the same file). */
  fileBytes: number;
  /** This load process's own CPU seconds per second of the run (1 = one core busy). */
  clientCpuShare: number;
}

type Stream = ClientReadableStream<unknown>;

/**
 * `node load/download.js '<options JSON>'`: downloads the file over and over from `concurrency`
 * workers, counting and discarding the bytes; a call counts once its stream has ended OK.
 */
async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as DownloadLoadOptions;
  const options: ChannelOptions = {
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
    // One channel per client: `connections` really means HTTP/2 connections.
    'grpc.use_local_subchannel_pool': 1,
    ...(o.windowBytes > 0 ? { 'grpc-node.flow_control_window': o.windowBytes } : {}),
  };
  const RawClient = makeGenericClientConstructor(RAW_STREAM_SERVICE, 'RawStream');
  const open: (() => Stream)[] = [];
  const closers: (() => void)[] = [];
  for (let i = 0; i < o.connections; i++) {
    if (o.mode === 'raw') {
      const client = new RawClient(o.target, credentials.createInsecure(), options);
      const req = Buffer.alloc(0);
      open.push(() => client['download']!(req) as Stream);
      closers.push(() => client.close());
    } else {
      // The stub daemons use (packages/daemon-client): chunks decoded without a copy.
      const client = new DaemonClient(o.target, credentials.createInsecure(), options);
      const md = new Metadata();
      md.set('x-api-key', o.token);
      const req = DownloadExportRequest.fromPartial({ logicalId: o.logicalId, version: '', offset: 0 });
      open.push(() => client.downloadExport(req, md) as Stream);
      closers.push(() => client.close());
    }
  }

  let calls = 0;
  let bytes = 0;
  let fileBytes = 0;
  const sizeOf = o.mode === 'raw' ? (m: unknown): number => (m as Buffer).length : (m: unknown): number => {
    const kind = (m as DownloadExportResponse).kind;
    return kind?.$case === 'chunk' ? kind.value.data.length : 0;
  };
  const one = (connection: number): Promise<number> =>
    new Promise((resolve, reject) => {
      let got = 0;
      const stream = open[connection]!();
      stream.on('data', (m: unknown) => {
        got += sizeOf(m);
      });
      stream.on('error', reject);
      stream.on('end', () => resolve(got));
    });

  // One warm-up call per connection: connects and (for the replica) makes sure the export is built.
  await Promise.all(open.map((_f, i) => one(i)));
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const elapsed = (): number => (performance.now() - started) / 1000;
  const more = (): boolean => elapsed() < o.maxSeconds && (elapsed() < o.seconds || calls < o.minCalls);
  const worker = async (w: number): Promise<void> => {
    while (more()) {
      const got = await one(w % o.connections);
      calls++;
      bytes += got;
      fileBytes = got;
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, (_v, w) => worker(w)));
  const seconds = elapsed();
  const cpu = process.cpuUsage(cpu0);
  for (const close of closers) close();
  const result: DownloadLoadResult = { calls, bytes, seconds, mbPerSec: bytes / 1e6 / seconds, callsPerSec: calls / seconds, fileBytes, clientCpuShare: (cpu.user + cpu.system) / 1e6 / seconds };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
