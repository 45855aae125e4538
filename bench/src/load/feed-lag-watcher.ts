/**
 * Load process for `feed-lag` (run with `fork`, talks to the parent over IPC):
 *
 *   node feed-lag-watcher.js <address> <token> <scope: global | logical id>
 *
 * A watching daemon: one WatchVersion stream on the scope, recording when each version arrives;
 * and, on a connection of its own, a CheckVersion poller (one call in flight, the next about
 * 1 ms after each answer) recording when each revision is first visible on the replica. Times
 * are epoch ms (performance.timeOrigin + now(), comparable across processes on one host).
 *   -> {type:'ready', revision}
 *   <- {type:'mark'}     -> {type:'mark', watched, polled}   the latest revision each has seen
 *   <- {type:'collect'}  -> {type:'result', watched, polled, polls, cpuMs}
 *                           watched / polled: [revision, epoch ms][] in arrival order
 *   <- {type:'stop'}     cancels everything and exits
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { DaemonServiceClient, type CheckVersionResponse, type WatchVersionResponse } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';

const [address, token, scopeArg] = process.argv.slice(2);
if (!address || !token || !scopeArg || !process.send) {
  console.error('usage (forked): feed-lag-watcher.js <address> <token> <global|logicalId>');
  process.exit(2);
}
const logicalId = scopeArg === 'global' ? undefined : Number(scopeArg);
const POLL_INTERVAL_MS = 1;

const send = (message: unknown): void => {
  process.send!(message);
};
const epochMs = (): number => performance.timeOrigin + performance.now();
const md = new Metadata();
md.set('x-api-key', token);

const watchClient = new DaemonServiceClient(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
const pollClient = new DaemonServiceClient(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });

const watched: [number, number][] = [];
const polled: [number, number][] = [];
let lastWatched = 0;
let lastPolled = 0;
let polls = 0;
let stopping = false;
const cpuAtStart = process.cpuUsage();

const checkVersion = (): Promise<CheckVersionResponse> =>
  new Promise((resolve, reject) =>
    pollClient.checkVersion({ logicalId, knownVersion: '' }, md, (err: ServiceError | null, res: CheckVersionResponse) => (err ? reject(err) : resolve(res))),
  );

async function poll(): Promise<void> {
  while (!stopping) {
    const res = await checkVersion();
    const at = epochMs();
    polls++;
    const revision = res.revision;
    if (revision > lastPolled) {
      lastPolled = revision;
      polled.push([revision, at]);
    }
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
}

async function start(): Promise<void> {
  const { version, revision: current } = await checkVersion();
  lastWatched = lastPolled = current;
  const call = watchClient.watchVersion({ logicalId, knownVersion: version }, md);
  call.on('data', (m: WatchVersionResponse) => {
    const at = epochMs();
    const revision = m.revision;
    if (revision > lastWatched) {
      lastWatched = revision;
      watched.push([revision, at]);
    }
  });
  call.on('error', (err: ServiceError) => {
    if (stopping) return;
    console.error(`feed-lag-watcher: stream: ${err.code} ${err.details}`);
    process.exit(1);
  });
  await checkVersion();
  poll().catch((err: unknown) => {
    if (stopping) return;
    console.error('feed-lag-watcher: poller:', err);
    process.exit(1);
  });
  send({ type: 'ready', revision: lastWatched });

  process.on('message', (message: { type: string }) => {
    if (message.type === 'mark') {
      send({ type: 'mark', watched: lastWatched, polled: lastPolled });
    } else if (message.type === 'collect') {
      const cpu = process.cpuUsage(cpuAtStart);
      send({ type: 'result', watched, polled, polls, cpuMs: (cpu.user + cpu.system) / 1000 });
    } else if (message.type === 'stop') {
      stopping = true;
      call.cancel();
      watchClient.close();
      pollClient.close();
      process.disconnect();
      setTimeout(() => process.exit(0), 200).unref();
    }
  });
}
process.on('disconnect', () => {
  if (!stopping) process.exit(0);
});

start().catch((err: unknown) => {
  console.error('feed-lag-watcher:', err);
  process.exit(1);
});
