/**
 * New-connection load generator, run in its own process (bench/src/lib/peer.ts runLoad): `loops`
 * loops each open a new channel (its own subchannel pool, so nothing is reused), make one
 * CheckVersion call on it, close it and start over. `calls` counts connections; latencies are
 * connect + call.
 */
import { readFileSync } from 'node:fs';
import { credentials, Metadata } from '@grpc/grpc-js';
import { DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { Recorder } from './recorder.js';

/** What new-connections.ts is told (one JSON argument). */
export interface NewConnectionsConfig {
  target: string;
  loops: number;
  warmupMs: number;
  durationMs: number;
  token: string;
  logicalId: number;
  /** TLS, verifying the target with this CA (PEM); unset: plaintext. */
  caFile?: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as NewConnectionsConfig;
const creds = config.caFile ? credentials.createSsl(readFileSync(config.caFile)) : credentials.createInsecure();
/** The development certificate names localhost too; TLS may not carry an IP address as server name (RFC 6066). */
const options = { 'grpc.use_local_subchannel_pool': 1, ...(config.caFile ? { 'grpc.ssl_target_name_override': 'localhost' } : {}) };
const metadata = new Metadata();
metadata.set('x-api-key', config.token);
const recorder = new Recorder(config.warmupMs, config.durationMs);

recorder.loop(config.loops, (next) => {
  const started = performance.now();
  const client = new DaemonServiceClient(config.target, creds, options);
  client.checkVersion({ logicalId: config.logicalId, knownVersion: '' }, metadata, (err) => {
    client.close();
    recorder.record(err, started);
    setImmediate(next);
  });
});
