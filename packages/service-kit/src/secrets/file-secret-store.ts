import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertSecretName, CasConflictError, type SecretStore, SecretStoreUnavailableError } from './secret-store.js';

const LOCK_TIMEOUT_MS = 5_000;
const STALE_LOCK_MS = 30_000;

/**
 * Plays Vault's part on machines without Vault: one JSON file `<dir>/<name>.json` per secret holding
 * `{ version, data }`. The directory is created 0700 and files are 0600. Writes are atomic (temp file,
 * fsync, rename, fsync dir) and serialized across processes by the lock file `<dir>/<name>.lock`, under
 * which the check-and-set is decided.
 */
export class FileSecretStore implements SecretStore {
  constructor(private readonly dir: string) {}

  describe(name: string): string {
    return `file ${this.file(name)}`;
  }

  async read(name: string): Promise<{ data: Record<string, string>; version: number } | null> {
    assertSecretName(name);
    let text: string;
    try {
      text = await readFile(this.file(name), 'utf8');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return null;
      throw unavailable(this.file(name), err);
    }
    return parseDocument(text, this.file(name));
  }

  async write(name: string, data: Record<string, string>, expectedVersion: number): Promise<number> {
    assertSecretName(name);
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw unavailable(this.dir, err);
    }
    const release = await this.lock(name);
    try {
      const version = (await this.read(name))?.version ?? 0;
      if (version !== expectedVersion) {
        throw new CasConflictError(`${this.file(name)} is at version ${version}, expected ${expectedVersion}`);
      }
      await this.replace(name, JSON.stringify({ version: version + 1, data }));
      return version + 1;
    } finally {
      await release();
    }
  }

  private file(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  /** Atomically replaces the secret file so readers see the old or the new document, never half of one. */
  private async replace(name: string, text: string): Promise<void> {
    const tmp = join(this.dir, `${name}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const handle = await open(tmp, 'wx', 0o600);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, this.file(name));
      // The rename lives in the directory entry; without this fsync a crash could forget it.
      const dirHandle = await open(this.dir, 'r');
      try {
        await dirHandle.sync();
      } finally {
        await dirHandle.close();
      }
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw unavailable(this.file(name), err);
    }
  }

  /**
   * Takes `<name>.lock` (exclusive create) and returns its release. Retries with short backoff for up to
   * 5 s, then throws SecretStoreUnavailableError. A lock older than 30 s belongs to a crashed writer
   * (writes take milliseconds) and is removed. Two processes breaking the same stale lock at the same
   * instant could both proceed; that needs a crash and a 30 s stall first, so it is accepted.
   */
  private async lock(name: string): Promise<() => Promise<void>> {
    const lockFile = join(this.dir, `${name}.lock`);
    const deadline = Date.now() + LOCK_TIMEOUT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await open(lockFile, 'wx', 0o600);
        await handle.close();
        return () => unlink(lockFile).catch(() => {});
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') throw unavailable(lockFile, err);
      }
      const age = await stat(lockFile).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0, // released between our open and stat: just retry
      );
      if (age > STALE_LOCK_MS) {
        await unlink(lockFile).catch(() => {});
        continue;
      }
      if (Date.now() >= deadline) {
        throw new SecretStoreUnavailableError(`timed out after ${LOCK_TIMEOUT_MS} ms waiting for ${lockFile}`);
      }
      // Jitter keeps racing writers from retrying in lockstep.
      await sleep(Math.min(5 * 2 ** attempt, 100) * (0.5 + Math.random()));
    }
  }
}

/** Parses `{ version, data }`; the error never quotes the text, which holds the secret. */
function parseDocument(text: string, path: string): { data: Record<string, string>; version: number } {
  let doc: { version?: unknown; data?: unknown } | undefined;
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    // V8's SyntaxError message quotes the input.
  }
  if (typeof doc?.version !== 'number' || typeof doc.data !== 'object' || doc.data === null) {
    throw new Error(`${path} is not a {version, data} secret document`);
  }
  return { version: doc.version, data: doc.data as Record<string, string> };
}

function errorCode(err: unknown): unknown {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function unavailable(path: string, cause: unknown): SecretStoreUnavailableError {
  if (cause instanceof SecretStoreUnavailableError) return cause;
  return new SecretStoreUnavailableError(`cannot access ${path}: ${(cause as Error).message}`, { cause });
}
