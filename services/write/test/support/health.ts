import { createRequire } from 'node:module';
import { credentials, loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

const require = createRequire(import.meta.url);

/** grpc.health.v1 Check for service '' on `address`: 'SERVING', 'NOT_SERVING', ... */
export async function healthStatus(address: string): Promise<string> {
  const pkg = loadPackageDefinition(loadSync(require.resolve('grpc-health-check/proto/health/v1/health.proto'), { keepCase: true, enums: String })) as GrpcObject;
  const Ctor = ((pkg['grpc'] as GrpcObject)['health'] as GrpcObject)['v1'] as GrpcObject;
  const Health = Ctor['Health'] as ServiceClientConstructor;
  const client = new Health(address, credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) =>
      client['Check']!({ service: '' }, (err: Error | null, r: { status: string }) => (err ? reject(err) : resolve(r.status))),
    );
  } finally {
    client.close();
  }
}
