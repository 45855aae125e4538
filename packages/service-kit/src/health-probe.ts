/**
 * Container health probe: `node packages/service-kit/dist/health-probe.js [host:port]`.
 *
 * Calls grpc.health.v1.Health/Check (service "", the whole server) with a 2 s deadline and exits 0
 * only when the answer is SERVING; NOT_SERVING, an error, a refused connection or the deadline
 * exit 1. The target is the argument, else HEALTH_ADDR, else the service's own listen address
 * (READ_GRPC_ADDR or WRITE_GRPC_ADDR, as the image sets one of them), else 127.0.0.1:50051. A
 * wildcard listen host (0.0.0.0, [::]) is probed on loopback. With the service's TLS_CERT_FILE set,
 * the probe speaks TLS and trusts HEALTH_CA_FILE (the CA that issued it). Used by the Dockerfiles'
 * HEALTHCHECK.
 */
import { makeGenericClientConstructor, type CallOptions, type Client, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { channelCredentials } from './tls.js';

const listen = process.argv[2] ?? process.env.HEALTH_ADDR ?? process.env.READ_GRPC_ADDR ?? process.env.WRITE_GRPC_ADDR ?? '127.0.0.1:50051';
const target = listen.replace(/^(0\.0\.0\.0|\[::\]|\[::0\]):/, '127.0.0.1:');

type CheckCallback = (err: ServiceError | null, response?: { status: string }) => void;
interface HealthClient extends Client {
  Check(request: { service: string }, options: CallOptions, callback: CheckCallback): void;
}

// Built from the definition grpc-health-check loads from its own health.proto (enums as strings).
const Health = makeGenericClientConstructor(healthService as Parameters<typeof makeGenericClientConstructor>[0], 'Health');
const tls = process.env.TLS_CERT_FILE ? { caFile: process.env.HEALTH_CA_FILE } : undefined;
// The certificate names the service (e.g. `write`), not the loopback address the probe dials.
const client = new Health(target, channelCredentials(tls), tls ? { 'grpc.ssl_target_name_override': 'localhost' } : {}) as unknown as HealthClient;

client.Check({ service: '' }, { deadline: Date.now() + 2000 }, (err, response) => {
  client.close();
  if (err) {
    console.error(`health ${target}: ${err.code} ${err.details || err.message}`);
    process.exit(1);
  }
  console.log(`health ${target}: ${response?.status}`);
  process.exit(response?.status === 'SERVING' ? 0 : 1);
});
