import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';
import { assertSecretName, CasConflictError, type SecretStore, SecretStoreUnavailableError } from './secret-store.js';

/** Attempts to take a held lock, 5 to 100 ms apart (randomized): about 5 s in all. */
const LOCK_RETRIES = 60;
/** A lock whose holder has not refreshed it for this long (ms) is a crashed writer's. */
const STALE_LOCK_MS = 30_000;

/**
 * Plays Vault's part on machines without Vault: one JSON file `<dir>/<name>.json` per secret holding
 * `{ version, data }`. The directory is created 0700 and files are 0600. Writes are atomic
 * (write-file-atomic, then fsync of the directory) and serialized across processes by the lock
 * `<dir>/<name>.lock` (proper-lockfile), under which the check-and-set is decided.
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

  /** Atomically replaces the secret file (mode 0600) so readers see the old or the new document, never half of one. */
  private async replace(name: string, text: string): Promise<void> {
    try {
      await writeFileAtomic(this.file(name), text, { mode: 0o600, fsync: true });
      // The rename lives in the directory entry; without this fsync a crash could forget it.
      const dirHandle = await open(this.dir, 'r');
      try {
        await dirHandle.sync();
      } finally {
        await dirHandle.close();
      }
    } catch (err) {
      throw unavailable(this.file(name), err);
    }
  }

  /**
   * Takes the lock `<name>.lock` (proper-lockfile: an atomically created directory whose mtime the
   * holder keeps fresh) and returns its release. Retries with backoff for about 5 s, then throws
   * SecretStoreUnavailableError. A lock not refreshed for 30 s belongs to a crashed writer and is
   * taken over.
   */
  private async lock(name: string): Promise<() => Promise<void>> {
    const lockfilePath = join(this.dir, `${name}.lock`);
    try {
      // Keyed by the secret file: proper-lockfile tracks the locks it holds by that path.
      return await lockfile.lock(this.file(name), {
        lockfilePath,
        realpath: false,
        stale: STALE_LOCK_MS,
        retries: { retries: LOCK_RETRIES, minTimeout: 5, maxTimeout: 100, randomize: true },
      });
    } catch (err) {
      if (errorCode(err) === 'ELOCKED') throw new SecretStoreUnavailableError(`timed out waiting for ${lockfilePath}`);
      throw unavailable(lockfilePath, err);
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
