import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile, mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '@titanbot/service-kit/free-port';

/** Debian's nginx (`apt-get install nginx-light`; `.ci/run` installs it when missing). */
export const NGINX = '/usr/sbin/nginx';
/** The configuration operators are given, run as it is (placeholders filled in). */
const TEMPLATE = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../docs/cdn/nginx.conf');

/** A running nginx caching proxy. */
export interface NginxCache {
  /** host:port it listens on. */
  address: string;
  /** Its access log so far, one `method uri status cache-status bytes` line per request. */
  accessLog(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * Starts nginx with docs/cdn/nginx.conf in front of `origin` (a replica's EXPORT_HTTP_ADDR, which
 * need not be listening yet) on a free loopback port, everything under a new temporary folder.
 * Throws when nginx is not installed, or does not accept connections within 10 s.
 */
export async function startNginxCache(origin: string): Promise<NginxCache> {
  if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: apt-get install nginx-light`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-nginx-'));
  await mkdir(path.join(dir, 'tmp'));
  const port = await freePort();
  const config = (await readFile(TEMPLATE, 'utf8')).replaceAll('{{LISTEN}}', `127.0.0.1:${port}`).replaceAll('{{ORIGIN}}', origin).replaceAll('{{DIR}}', dir);
  await writeFile(path.join(dir, 'nginx.conf'), config);
  // As root, nginx's workers would run as nobody, who cannot write this folder.
  const globals = `daemon off;${process.getuid?.() === 0 ? ' user root;' : ''}`;
  const child: ChildProcess = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log'), '-g', globals], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = `127.0.0.1:${port}`;
  for (let tries = 0; !(await accepts(port)); tries++) {
    if (tries > 100 || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not start: ${await readFile(path.join(dir, 'error.log'), 'utf8').catch(() => '')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    address,
    accessLog: async () => (await readFile(path.join(dir, 'access.log'), 'utf8')).split('\n').filter(Boolean),
    async stop() {
      // SIGQUIT: graceful; the log is flushed before the master exits.
      if (child.exitCode === null) child.kill('SIGQUIT');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
