/**
 * Load process for `watch-fanout` (run with `fork`, talks to the parent over IPC):
 *
 *   node watchers.js <address> <token,token,...> <streams> <connections> <scope: global | logical id>
 *
 * Opens `streams` WatchVersion streams spread evenly over `connections` HTTP/2 sessions, every one
 * with known_version = the scope's current version so none gets an initial message. The streams are
 * raw HTTP/2 requests (node:http2, a gRPC frame written by hand), not grpc-js calls: a message's
 * arrival is its first DATA frame, nothing is decoded, so the load process costs a few µs a message
 * and the figures measure the replica, not this process (with grpc-js clients it spent 175-250 ms
 * of CPU a round on 10,000 messages, longer than the replica's fan-out itself). Then:
 *   -> {type:'ready', version, streams, connections}   once every stream has its response headers
 *                                                       (the replica sends them when it registers the watch)
 *   <- {type:'go'}                                     arms the recorder (the parent's change follows);
 *                                                       may be repeated once each result is in (rounds)
 *   -> {type:'result', arrivals, received, early, errors, cpuMs}
 *                                                       when every stream has its next message, or after
 *                                                       the timeout: arrivals[i] = epoch ms (performance.
 *                                                       timeOrigin + now(), comparable across processes on
 *                                                       one host) stream i got it, or null
 *   <- {type:'stop'}                                   cancels everything and exits
 */
import http2 from 'node:http2';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { DaemonServiceClient, WatchVersionRequest, type CheckVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';

const [address, tokenList, streamsArg, connectionsArg, scopeArg] = process.argv.slice(2);
if (!address || !tokenList || !streamsArg || !connectionsArg || !scopeArg || !process.send) {
  console.error('usage (forked): watchers.js <address> <tokens> <streams> <connections> <global|logicalId>');
  process.exit(2);
}
const tokens = tokenList.split(',');
const streams = Number(streamsArg);
const connections = Number(connectionsArg);
const logicalId = scopeArg === 'global' ? undefined : Number(scopeArg);
const RESULT_TIMEOUT_MS = 30_000;

const send = (message: unknown): void => {
  process.send!(message);
};
const epochMs = (): number => performance.timeOrigin + performance.now();

const metadataFor = (token: string): Metadata => {
  const md = new Metadata();
  md.set('x-api-key', token);
  return md;
};

const sessions = Array.from({ length: connections }, () => http2.connect(`http://${address}`));
const WATCH_PATH = DaemonServiceClient.service.watchVersion.path;

/** The scope's current version, by one CheckVersion over grpc-js. */
function currentVersion(): Promise<string> {
  const client = new DaemonServiceClient(address!, credentials.createInsecure());
  return new Promise<string>((resolve, reject) =>
    client.checkVersion({ logicalId, knownVersion: '' }, metadataFor(tokens[0]!), (err: ServiceError | null, res: CheckVersionResponse) => (err ? reject(err) : resolve(res.version))),
  ).finally(() => client.close());
}

/** A gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, the bytes. */
function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

const calls: http2.ClientHttp2Stream[] = [];
const arrivals = new Float64Array(streams).fill(Number.NaN);
let armed = false;
let received = 0;
let early = 0;
let errors = 0;
let stopping = false;
let reported = false;
let cpuAtGo: NodeJS.CpuUsage | undefined;
let timeout: NodeJS.Timeout | undefined;

function report(): void {
  if (reported) return;
  reported = true;
  armed = false;
  clearTimeout(timeout);
  const cpu = process.cpuUsage(cpuAtGo);
  send({
    type: 'result',
    arrivals: Array.from(arrivals, (t) => (Number.isNaN(t) ? null : t)),
    received,
    early,
    errors,
    cpuMs: (cpu.user + cpu.system) / 1000,
  });
}

async function open(): Promise<void> {
  const version = await currentVersion();
  const request = grpcFrame(WatchVersionRequest.encode({ logicalId, knownVersion: version }).finish());
  const opened: Promise<void>[] = [];
  for (let i = 0; i < streams; i++) {
    const c = i % connections;
    const call = sessions[c]!.request({
      ':method': 'POST',
      ':path': WATCH_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      'x-api-key': tokens[c % tokens.length]!,
    });
    call.end(request);
    opened.push(
      new Promise((resolve) =>
        call.once('response', (headers) => {
          if (headers[':status'] !== 200 || headers['grpc-status'] !== undefined) fail(i, `status ${headers[':status']}, grpc-status ${headers['grpc-status']} ${headers['grpc-message']}`);
          resolve();
        }),
      ),
    );
    call.on('data', () => {
      if (!armed) {
        early++;
        return;
      }
      if (!Number.isNaN(arrivals[i]!)) return;
      arrivals[i] = epochMs();
      if (++received === streams) report();
    });
    call.on('trailers', (trailers) => fail(i, `ended: grpc-status ${trailers['grpc-status']} ${trailers['grpc-message']}`));
    call.on('error', (err: Error) => fail(i, err.message));
    calls.push(call);
  }
  await Promise.all(opened);
  send({ type: 'ready', version, streams, connections, errors });
}

function fail(i: number, why: string): void {
  if (stopping) return;
  errors++;
  if (errors <= 3) console.error(`watchers: stream ${i}: ${why}`);
}

process.on('message', (message: { type: string }) => {
  if (message.type === 'go') {
    arrivals.fill(Number.NaN);
    received = 0;
    reported = false;
    cpuAtGo = process.cpuUsage();
    armed = true;
    timeout = setTimeout(report, RESULT_TIMEOUT_MS);
  } else if (message.type === 'stop') {
    stopping = true;
    for (const call of calls) call.close(http2.constants.NGHTTP2_CANCEL);
    for (const session of sessions) session.close();
    process.disconnect();
    setTimeout(() => process.exit(0), 200).unref();
  }
});
process.on('disconnect', () => {
  if (!stopping) process.exit(0);
});

open().catch((err: unknown) => {
  console.error('watchers:', err);
  process.exit(1);
});
