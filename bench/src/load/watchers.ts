/**
 * Load process for `watch-fanout` (run with `fork`, talks to the parent over IPC):
 *
 *   node watchers.js <address> <token,token,...> <streams> <connections> <scope: global | logical id>
 *
 * Opens `streams` WatchVersion streams spread evenly over `connections` channels (one
 * DaemonServiceClient each, with its own subchannel), every one with known_version = the scope's
 * current version so none gets an initial message. Then:
 *   -> {type:'ready', version, streams, connections}   once all are open (a CheckVersion round trip per
 *                                                       connection after the streams, plus a settle)
 *   <- {type:'go'}                                     arms the recorder (the parent's change follows);
 *                                                       may be repeated once each result is in (rounds)
 *   -> {type:'result', arrivals, received, early, errors, cpuMs}
 *                                                       when every stream has its next message, or after
 *                                                       the timeout: arrivals[i] = epoch ms (performance.
 *                                                       timeOrigin + now(), comparable across processes on
 *                                                       one host) stream i got it, or null
 *   <- {type:'stop'}                                   cancels everything and exits
 */
import { credentials, Metadata, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { DaemonServiceClient, type CheckVersionResponse, type WatchVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';

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

const clients = Array.from(
  { length: connections },
  () => new DaemonServiceClient(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }),
);

const checkVersion = (c: number): Promise<CheckVersionResponse> =>
  new Promise((resolve, reject) =>
    clients[c]!.checkVersion({ logicalId, knownVersion: '' }, metadataFor(tokens[c % tokens.length]!), (err: ServiceError | null, res: CheckVersionResponse) =>
      err ? reject(err) : resolve(res),
    ),
  );

const calls: ClientReadableStream<WatchVersionResponse>[] = [];
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
  // Connect every channel (and learn the version) before any stream.
  const versions = await Promise.all(clients.map((_c, i) => checkVersion(i)));
  const version = versions[0]!.version;
  if (versions.some((v) => v.version !== version)) throw new Error('the version changed while opening');
  for (let i = 0; i < streams; i++) {
    const c = i % connections;
    const call = clients[c]!.watchVersion({ logicalId, knownVersion: version }, metadataFor(tokens[c % tokens.length]!));
    call.on('data', (_m: WatchVersionResponse) => {
      if (!armed) {
        early++;
        return;
      }
      if (!Number.isNaN(arrivals[i]!)) return;
      arrivals[i] = epochMs();
      if (++received === streams) report();
    });
    call.on('error', (err: ServiceError) => {
      if (stopping) return;
      errors++;
      if (errors <= 3) console.error(`watchers: stream ${i}: ${err.code} ${err.details}`);
    });
    calls.push(call);
  }
  // The streams were sent before these on the same connections: once they answer, the server has the streams.
  await Promise.all(clients.map((_c, i) => checkVersion(i)));
  await new Promise((r) => setTimeout(r, 500));
  send({ type: 'ready', version, streams, connections, errors });
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
    for (const call of calls) call.cancel();
    for (const c of clients) c.close();
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
