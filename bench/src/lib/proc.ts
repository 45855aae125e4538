import { readdir, readFile } from 'node:fs/promises';

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`; 100 on Linux x86_64). */
const CLK_TCK = 100;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Resident set size in bytes, from /proc/<pid>/status (VmRSS). */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Pids of every running process whose command name is `comm` (e.g. `postgres`). */
export async function pidsNamed(comm: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const name = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (name.trim() === comm) pids.push(Number(entry));
  }
  return pids;
}

/** Total CPU seconds of a set of processes (gone ones count 0). */
export async function totalCpuSeconds(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += await cpuSeconds(pid).catch(() => 0);
  return total;
}

/**
 * CPU seconds spent by `pids` and by every `postgres` process while `work` runs. PostgreSQL
 * backends come and go: processes are listed before and after, and a backend that exits during
 * `work` loses its last ticks (the figure is then a slight underestimate for PostgreSQL).
 */
export async function measureCpu<T>(pids: readonly number[], includePostgres: boolean, work: () => Promise<T>): Promise<{ result: T; cpuSeconds: number }> {
  const pg0 = includePostgres ? await pidsNamed('postgres') : [];
  const before = (await totalCpuSeconds(pids)) + (await totalCpuSeconds(pg0));
  const result = await work();
  const pg1 = includePostgres ? await pidsNamed('postgres') : [];
  const fresh = pg1.filter((p) => !pg0.includes(p));
  const after = (await totalCpuSeconds(pids)) + (await totalCpuSeconds(pg0)) + (await totalCpuSeconds(fresh));
  return { result, cpuSeconds: after - before };
}
