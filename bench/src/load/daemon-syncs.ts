/**
 * Load process for `delta-fanout` (forked, IPC): `count` real DaemonSync clients watching one
 * scope, each installing to its own file under `dir`, as devices do.
 *
 *   -> {type:'ready'}                      every client has installed the current file
 *   <- {type:'go'}                         arm; the parent's change follows
 *   -> {type:'result', installed, errors}  when every client has installed a newer file (or after
 *        RESULT_TIMEOUT_MS): installed[i] = epoch ms client i finished installing, or null
 *   <- {type:'stop'}
 */
import { setMaxListeners } from 'node:events';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DaemonSync } from '@titanbot/daemon-client';

/** What daemon-syncs.ts is told (one JSON argument). */
export interface DaemonSyncsConfig {
  address: string;
  tokens: string[];
  count: number;
  logicalId: number;
  dir: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as DaemonSyncsConfig;
const RESULT_TIMEOUT_MS = 300_000;
const epochMs = (): number => performance.timeOrigin + performance.now();
const stop = new AbortController();
// Every client listens on the one signal.
setMaxListeners(config.count * 4, stop.signal);
let armed = false;
let installed: (number | null)[] = [];
let errors = 0;
let initial = 0;
let timeout: NodeJS.Timeout | undefined;

function report(): void {
  if (!armed) return;
  armed = false;
  clearTimeout(timeout);
  process.send!({ type: 'result', installed, errors });
}

for (let i = 0; i < config.count; i++) {
  const tokenFile = path.join(config.dir, `token-${i}.txt`);
  writeFileSync(tokenFile, `${config.tokens[i % config.tokens.length]}\n`, { mode: 0o600 });
  const sync = new DaemonSync({
    server: config.address,
    tokenFile,
    dbPath: path.join(config.dir, `daemon-${i}.sqlite`),
    logicalId: config.logicalId,
    logger: (event, fields) => {
      if (event === 'installed') {
        if (!armed) {
          if (++initial === config.count) process.send!({ type: 'ready' });
        } else if (installed[i] === null) {
          installed[i] = epochMs();
          if (installed.every((t) => t !== null)) report();
        }
        // A refusal (DOWNLOADS_BUSY) retried is admission control at work, not an error.
      } else if (event === 'delta-failed' || (event === 'download-interrupted' && fields['code'] !== 'RESOURCE_EXHAUSTED')) errors++;
    },
  });
  sync.watch(stop.signal).catch((err: unknown) => {
    if (!stop.signal.aborted) console.error(`daemon-syncs: ${i}:`, err);
  });
}

process.on('message', (message: { type: string }) => {
  if (message.type === 'go') {
    installed = Array.from({ length: config.count }, () => null);
    errors = 0;
    armed = true;
    timeout = setTimeout(report, RESULT_TIMEOUT_MS);
  } else if (message.type === 'stop') {
    stop.abort();
    process.disconnect();
    setTimeout(() => process.exit(0), 200).unref();
  }
});
process.on('disconnect', () => {
  if (!stop.signal.aborted) process.exit(0);
});
