import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

/** The daemon CLI of this checkout (dist/demo.js sits in packages/titanctl/dist). */
const DAEMON_BIN = fileURLToPath(new URL('../../daemon-client/bin/titanbot-daemon.js', import.meta.url));
const STOP_GRACE_MS = 5_000;

/** One `installed` event of the daemon CLI. */
export interface Install {
  version: string;
  /** The event's "time" field (ms since epoch; the daemon's clock once the file is in place), else receive time. */
  at: number;
}

/** What a demo daemon stands for in the fleet. */
export interface DaemonIdentity {
  physicalId: number;
  logicalId: number;
  token: string;
}

/**
 * One `titanbot-daemon sync --watch` child process in its own temp folder (token file and daemon
 * database), with its `installed` events collected from the JSON lines it prints.
 */
export class DemoDaemon {
  readonly installs: Install[] = [];
  private readonly waiters = new Set<() => void>();
  private readonly stderrTail: string[] = [];
  private lastEvent = '';
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    readonly identity: DaemonIdentity,
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => ((this.exitCode = code), this.wake(), resolve())));
    createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      this.stderrTail.push(line);
      if (this.stderrTail.length > 5) this.stderrTail.shift();
    });
  }

  /** Writes the token file and starts the daemon against the read service at `server`. */
  static async start(identity: DaemonIdentity, server: string): Promise<DemoDaemon> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `titanbot-demo-${identity.physicalId}-`));
    const tokenFile = path.join(dir, 'token.txt');
    await writeFile(tokenFile, `${identity.token}\n`, { mode: 0o600 });
    const args = ['sync', '--watch', '--server', server, '--token-file', tokenFile, '--db', path.join(dir, 'titanbotd.sqlite'), '--logical-id', String(identity.logicalId)];
    const child = spawn(process.execPath, [DAEMON_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    return new DemoDaemon(identity, dir, child);
  }

  /** The version of the last file installed; '' before the first. */
  get version(): string {
    return this.installs.at(-1)?.version ?? '';
  }

  /**
   * Resolves with the install at index `index` (0 = the first file) as soon as it has happened;
   * rejects after `timeoutMs`, or at once if the process has exited, quoting its last output.
   */
  async install(index: number, timeoutMs: number): Promise<Install> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const install = this.installs[index];
      if (install) return install;
      if (this.exitCode !== undefined) throw this.failure(`exited with code ${this.exitCode}`);
      const left = deadline - Date.now();
      if (left <= 0) throw this.failure(`no new file within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.add(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  /** Habits in the daemon database now on disk (read-only, so the daemon's renames are unaffected). */
  habitCount(): number {
    const db = new Database(path.join(this.dir, 'titanbotd.sqlite'), { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM habits').get() as { n: number }).n;
    } finally {
      db.close();
    }
  }

  /** SIGTERM (the CLI's graceful stop), SIGKILL after a grace period, then removes the temp folder. */
  async stop(): Promise<void> {
    if (this.exitCode === undefined) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  private onLine(line: string): void {
    let event: { time?: string; event?: string; version?: string };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      return;
    }
    this.lastEvent = line;
    if (event.event !== 'installed' || typeof event.version !== 'string') return;
    this.installs.push({ version: event.version, at: Date.parse(event.time ?? '') || Date.now() });
    this.wake();
  }

  private wake(): void {
    for (const waiter of this.waiters) waiter();
    this.waiters.clear();
  }

  private failure(what: string): Error {
    const output = [this.lastEvent, ...this.stderrTail].filter(Boolean).join('\n  ');
    return new Error(`daemon of device ${this.identity.physicalId}: ${what}${output ? `\n  ${output}` : ''}`);
  }
}
