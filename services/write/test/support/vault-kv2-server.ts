import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface VaultKv2Server {
  /** Base URL, e.g. `http://127.0.0.1:38123`. */
  url: string;
  /** Shuts the server down for good. */
  close(): Promise<void>;
  /** Simulates Vault going down: closes the listener and every connection, keeps the data. */
  stop(): Promise<void>;
  /** Listens again on the same port with the data it had. */
  restart(): Promise<void>;
  /** Every stored version of `<mount>/data/<path>` (e.g. `secret/titanbot/admin-token`), oldest first; [] when never written. */
  versions(key: string): Version[];
}

/** One stored version of a secret. */
export interface Version {
  data: Record<string, string>;
  created_time: string;
}

/**
 * An in-process stand-in for the Vault KV v2 data endpoints (`GET`/`POST /v1/<mount>/data/<path>`):
 * token check, versions, `?version=N` reads and `options.cas` check-and-set, with Vault's status codes
 * and error bodies.
 */
export async function startVaultKv2Server({ token }: { token: string }): Promise<VaultKv2Server> {
  const secrets = new Map<string, Version[]>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.headers['x-vault-token'] !== token) return send(403, { errors: ['permission denied'] });
    const url = new URL(req.url ?? '/', 'http://vault');
    const key = /^\/v1\/([^/]+)\/data\/(.+)$/.exec(url.pathname)?.slice(1).join('/');
    if (key === undefined) return send(404, { errors: [] });
    const versions = secrets.get(key) ?? [];

    if (req.method === 'GET') {
      const wanted = Number(url.searchParams.get('version') ?? 0) || versions.length;
      const found = versions[wanted - 1];
      if (!found) return send(404, { errors: [] });
      const metadata = { created_time: found.created_time, deletion_time: '', destroyed: false, version: wanted };
      return send(200, { data: { data: found.data, metadata } });
    }
    if (req.method === 'POST' || req.method === 'PUT') {
      let body: { options?: { cas?: number }; data?: Record<string, string> };
      try {
        body = JSON.parse(await readBody(req)) as typeof body;
      } catch {
        return send(400, { errors: ['failed to parse JSON input'] });
      }
      if (!body.data) return send(400, { errors: ['no data provided'] });
      const cas = body.options?.cas;
      if (cas !== undefined && cas !== versions.length) {
        return send(400, { errors: ['check-and-set parameter did not match the current version'] });
      }
      const created_time = new Date().toISOString();
      secrets.set(key, [...versions, { data: body.data, created_time }]);
      return send(200, { data: { created_time, deletion_time: '', destroyed: false, version: versions.length + 1 } });
    }
    send(405, { errors: [] });
  };

  const server = createServer((req, res) => void handle(req, res));
  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject).listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = (): Promise<void> =>
    new Promise((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      // Clients keep idle keep-alive sockets; drop them so requests really fail while "down".
      server.closeAllConnections();
    });

  await listen(0);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => (server.listening ? stop() : Promise.resolve()),
    stop,
    restart: () => listen(port),
    versions: (key) => [...(secrets.get(key) ?? [])],
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
