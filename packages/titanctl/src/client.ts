import path from 'node:path';
import { Client } from '@grpc/grpc-js';
import { channelCredentials } from '@titanbot/service-kit/tls';
import { FileSecretStore } from '@titanbot/service-kit/secrets/file-secret-store';
import { apiKeyMetadata } from '@titanbot/service-kit/grpc-client';

/** Where the write service listens when neither --server nor TITANBOT_SERVER says otherwise. */
export const DEFAULT_SERVER = '127.0.0.1:50051';

/** Per-call deadline unless a command asks for longer. */
export const DEFAULT_DEADLINE_MS = 10_000;

/** One unary RPC as ts-proto describes it in `<Service>Service` (path and codecs). */
export interface Method<Req, Res> {
  path: string;
  requestSerialize(value: Req): Buffer;
  responseDeserialize(value: Buffer): Res;
}

/** Admin calls to one write service with one admin token. */
export interface AdminApi {
  /** Resolves with the response; rejects with the grpc-js ServiceError of a failed call. */
  call<Req, Res>(method: Method<Req, Res>, request: Req, deadlineMs?: number): Promise<Res>;
}

/**
 * A connection to the write service at `server` (host:port; TLS when `tls` is given, verifying
 * the server with `tls.caFile` or the system's trust store) sending `token` as `x-api-key`. A
 * single generic Client serves every admin service, since the service definitions carry the
 * method paths. Call `close()` when done.
 */
export function connect(server: string, token: string, tls?: { caFile?: string }): AdminApi & { close(): void } {
  const client = new Client(server, channelCredentials(tls));
  return {
    call<Req, Res>(method: Method<Req, Res>, request: Req, deadlineMs = DEFAULT_DEADLINE_MS): Promise<Res> {
      const metadata = apiKeyMetadata(token);
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          method.path,
          (req: Req) => method.requestSerialize(req),
          (buf: Buffer) => method.responseDeserialize(buf),
          request,
          metadata,
          { deadline: Date.now() + deadlineMs },
          (err, res) => (err || res === undefined ? reject(err) : resolve(res)),
        );
      });
    },
    close: () => client.close(),
  };
}

/** --server, else TITANBOT_SERVER, else 127.0.0.1:50051. */
export const resolveServer = (flagValue: string | undefined, env: NodeJS.ProcessEnv): string =>
  flagValue || env.TITANBOT_SERVER || DEFAULT_SERVER;

/**
 * The admin token: --token, else TITANBOT_ADMIN_TOKEN, else field `current` of the file secret store
 * `<DATA_DIR>/secrets/admin-token.json` (DATA_DIR default `.data`, relative to the current
 * directory), which is where `npm start` keeps it when Vault is not configured. Throws an Error
 * saying where it looked when none is found, SecretStoreUnavailableError when the file cannot be read.
 */
export async function resolveToken(flagValue: string | undefined, env: NodeJS.ProcessEnv): Promise<string> {
  if (flagValue) return flagValue;
  if (env.TITANBOT_ADMIN_TOKEN) return env.TITANBOT_ADMIN_TOKEN;
  const dir = path.resolve(env.DATA_DIR || '.data', 'secrets');
  const current = (await new FileSecretStore(dir).read('admin-token'))?.data.current;
  if (current) return current;
  throw new Error(
    `no admin token: pass --token, set TITANBOT_ADMIN_TOKEN, or run where ${path.join(dir, 'admin-token.json')} exists (set DATA_DIR)`,
  );
}
