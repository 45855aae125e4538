import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';

/** A memory cgroup a process is started in, as a container runtime would start it. */
export interface MemoryLimit {
  bytes: number;
  /** The command that runs `command args` inside the cgroup (it joins, then execs, so the pid is the command's). */
  wrap(command: string, args: string[]): { command: string; args: string[] };
  /** Processes of the cgroup the kernel's OOM killer has killed so far (`oom_kill` of v2 `memory.events`, v1 `memory.oom_control`). */
  oomKills(): Promise<number>;
  /** Removes the cgroup once its processes have exited; nothing when it is already gone (a service is stopped twice). */
  remove(): Promise<void>;
}

/**
 * A new memory cgroup named `name` whose processes may use at most `bytes` (anonymous memory and
 * page cache, as a container's limit): cgroup v2 `memory.max`, or v1's memory controller
 * `memory.limit_in_bytes`. Needs root. A Node process started in it sizes V8's heap from the
 * limit (Node 20: 259 MiB of heap in 512 MiB), which it cannot when it joins after starting,
 * hence `wrap`. Throws when neither hierarchy can be written.
 */
export async function createMemoryLimit(name: string, bytes: number): Promise<MemoryLimit> {
  const v2 = await access(path.join(CGROUP_ROOT, 'cgroup.controllers')).then(
    () => true,
    () => false,
  );
  const dir = v2 ? path.join(CGROUP_ROOT, name) : path.join(CGROUP_ROOT, 'memory', name);
  if (v2) {
    // A child of the root has memory.max only once the root enables the controller for its children (systemd does; a bare host may not).
    const enabled = await readFile(path.join(CGROUP_ROOT, 'cgroup.subtree_control'), 'utf8');
    if (!enabled.split(/\s+/).includes('memory')) await writeFile(path.join(CGROUP_ROOT, 'cgroup.subtree_control'), '+memory');
  }
  await mkdir(dir);
  await writeFile(path.join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(bytes));
  return {
    bytes,
    wrap: (command, args) => ({ command: '/bin/sh', args: ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir, command, ...args] }),
    async oomKills() {
      const events = await readFile(path.join(dir, v2 ? 'memory.events' : 'memory.oom_control'), 'utf8');
      return Number(/^oom_kill (\d+)$/m.exec(events)?.[1] ?? 0);
    },
    remove: () =>
      rmdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      }),
  };
}

/** For a benchmark's figures: a replica's memory limit (MiB) and the OOM kills in it so far; null without a limit. */
export async function memoryLimitFigures(limit: MemoryLimit | undefined): Promise<{ replicaMemoryLimitMiB: number | null; oomKills: number | null }> {
  return limit ? { replicaMemoryLimitMiB: limit.bytes / (1024 * 1024), oomKills: await limit.oomKills() } : { replicaMemoryLimitMiB: null, oomKills: null };
}
