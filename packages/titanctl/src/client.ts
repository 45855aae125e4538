import path from 'node:path';
import { Client, Metadata } from '@grpc/grpc-js';
import { channelCredentials } from '@titanbot/service-kit/tls';
import { FileSecretStore } from '@titanbot/service-kit/secrets/file-secret-store';
import { apiKeyMetadata, unaryCall, type UnaryMethod } from '@titanbot/service-kit/grpc-client';
import { freshSession, readSession, sessionPath } from './login.js';

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

/**
 * How titanctl proves who calls, asked before every call: the admin token as `x-api-key`, or the
 * operator's OAuth 2.0 access token as `authorization: Bearer`, renewed when it nears expiry.
 */
export type Credential = () => Promise<Metadata>;

/** Admin calls to one write service with one credential. */
export interface AdminApi {
  /** Resolves with the response; rejects with the grpc-js ServiceError of a failed call. */
  call<Req, Res>(method: Method<Req, Res>, request: Req, deadlineMs?: number): Promise<Res>;
}

/**
 * A connection to the write service at `server` (host:port; TLS when `tls` is given, verifying
 * the server with `tls.caFile` or the system's trust store) sending `credential` with each call.
 * A single generic Client serves every admin service, since the service definitions carry the
 * method paths. Call `close()` when done.
 */
export function connect(server: string, credential: Credential, tls?: { caFile?: string }): AdminApi & { close(): void } {
  const client = new Client(server, channelCredentials(tls));
  return {
    async call<Req, Res>(method: Method<Req, Res>, request: Req, deadlineMs = DEFAULT_DEADLINE_MS): Promise<Res> {
      const metadata = await credential();
      // One generic client for every service: the method is its path and (de)serializers.
      const byPath: UnaryMethod<Req, Res> = (req, md, options, callback) =>
        client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, req, md, options, (err, res) => callback(err, res as Res));
      return unaryCall(client, byPath, request, metadata, { deadline: Date.now() + deadlineMs });
    },
    close: () => client.close(),
  };
}

/** --server, else TITANBOT_SERVER, else 127.0.0.1:50051. */
export const resolveServer = (flagValue: string | undefined, env: NodeJS.ProcessEnv): string =>
  flagValue || env.TITANBOT_SERVER || DEFAULT_SERVER;

const bearerMetadata = (accessToken: string): Metadata => {
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${accessToken}`);
  return metadata;
};

/**
 * The credential for admin calls, first found of: --token or TITANBOT_ADMIN_TOKEN (the admin
 * token); the session `titanctl login` saved (an OAuth 2.0 access token, renewed before it
 * expires; `now` is ms since the epoch); the admin token `npm start` keeps under DATA_DIR (see
 * resolveToken). Throws an Error saying what to do when there is none, LoginError when the saved
 * session cannot be used or renewed.
 */
export async function resolveCredential(flagToken: string | undefined, env: NodeJS.ProcessEnv, now: () => number): Promise<Credential> {
  const explicit = flagToken || env.TITANBOT_ADMIN_TOKEN;
  if (explicit) return async () => apiKeyMetadata(explicit);
  const file = sessionPath(env);
  const session = await readSession(file);
  if (session) {
    let current = session;
    return async () => {
      current = await freshSession(file, current, env, now);
      return bearerMetadata(current.accessToken);
    };
  }
  try {
    const token = await resolveToken(undefined, env);
    return async () => apiKeyMetadata(token);
  } catch (err) {
    if (!(err instanceof NoAdminTokenError)) throw err;
    throw new Error(`not logged in: run titanctl login, or ${err.message}`);
  }
}

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
  throw new NoAdminTokenError(
    `no admin token: pass --token, set TITANBOT_ADMIN_TOKEN, or run where ${path.join(dir, 'admin-token.json')} exists (set DATA_DIR)`,
  );
}

/** resolveToken found no admin token anywhere it looked. */
export class NoAdminTokenError extends Error {}
