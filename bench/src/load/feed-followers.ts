/**
 * Load process for `feed-fanout` (forked, IPC): `followers` lightweight feed followers, each a
 * ChangeFeedService.Subscribe stream on its own connection with the reader credential, as a
 * replica's consumer opens it, from `afterRevision`. They decode what arrives and keep the last
 * revision; nothing is applied.
 *
 *   -> {type:'ready'}                       every follower has its first message (the epoch)
 *   <- {type:'wait', revision}              answered once every follower has reached `revision`:
 *   -> {type:'reached', at}                   epoch ms of the last one to get there
 *   <- {type:'stop'}
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { ChangeFeedServiceClient, type SubscribeResponse } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';

/** What feed-followers.ts is told (one JSON argument). */
export interface FeedFollowersConfig {
  address: string;
  readerToken: string;
  followers: number;
  afterRevision: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as FeedFollowersConfig;
const send = (message: unknown): void => void process.send!(message);
const epochMs = (): number => performance.timeOrigin + performance.now();
const md = new Metadata();
md.set('x-api-key', config.readerToken);

const clients = Array.from({ length: config.followers }, () => new ChangeFeedServiceClient(config.address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': 64 * 1024 * 1024 }));
const last = new Array<number>(config.followers).fill(config.afterRevision);
let waiting: { revision: number } | undefined;
let stopping = false;

/** Answers a pending 'wait' once the slowest follower has its revision. */
function check(): void {
  if (waiting && last.every((r) => r >= waiting!.revision)) {
    waiting = undefined;
    send({ type: 'reached', at: epochMs() });
  }
}

const opened = clients.map(
  (client, i) =>
    new Promise<void>((resolve, reject) => {
      const call = client.subscribe({ afterRevision: config.afterRevision, epoch: '' }, md);
      call.on('data', (m: SubscribeResponse) => {
        resolve();
        if (m.kind?.$case === 'batch') {
          const events = m.kind.value.events;
          if (events.length) last[i] = events[events.length - 1]!.revision;
          check();
        }
      });
      call.on('error', (err: Error) => {
        if (stopping) return;
        console.error(`feed-followers: follower ${i}: ${err.message}`);
        reject(err);
      });
    }),
);

process.on('message', (message: { type: string; revision?: number }) => {
  if (message.type === 'wait') {
    waiting = { revision: message.revision! };
    check();
  } else if (message.type === 'stop') {
    stopping = true;
    for (const c of clients) c.close();
    process.disconnect();
    setTimeout(() => process.exit(0), 200).unref();
  }
});

Promise.all(opened).then(
  () => send({ type: 'ready' }),
  () => process.exit(1),
);
