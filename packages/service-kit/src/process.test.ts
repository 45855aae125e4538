import { execFile, spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { serviceLogger } from './process.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PROCESS_JS = fileURLToPath(new URL('../dist/process.js', import.meta.url));

/** Runs `body` in a fresh node process that has `exitOnFatalErrors` installed; resolves with its exit code and stdout lines. */
function runWithFatalHandlers(body: string): Promise<{ code: number | null; lines: Record<string, unknown>[] }> {
  const script = `import { exitOnFatalErrors, serviceLogger } from ${JSON.stringify(PROCESS_JS)};
exitOnFatalErrors(serviceLogger('info', { service: 'probe' }));
${body}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  return new Promise((resolve) =>
    child.on('exit', (code) => resolve({ code, lines: out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>) })),
  );
}

describe('process-level failures', () => {
  beforeAll(async () => {
    await promisify(execFile)('npx', ['tsc', '-b', 'packages/service-kit'], { cwd: ROOT });
  }, 120_000);

  it.each([
    ['an unhandled rejection', "Promise.reject(new Error('boom'));", 'unhandled promise rejection; exiting'],
    ['an uncaught exception', "setImmediate(() => { throw new Error('boom'); });", 'uncaught exception; exiting'],
  ])('%s is logged at fatal and ends the process with code 1', async (_what, body, msg) => {
    const { code, lines } = await runWithFatalHandlers(`${body}\nsetTimeout(() => console.log('still running'), 60_000);`);
    expect(code).toBe(1);
    expect(lines).toEqual([expect.objectContaining({ level: 60, service: 'probe', msg, err: expect.objectContaining({ message: 'boom' }) })]);
  });

  it('censors credential fields wherever a log line puts them', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const logger = serviceLogger('info', {}, sink);
    logger.info({ token: 'tbd_secret1', account: { googlePassword: 'secret2' }, request: { ssh: { privateKey: 'secret3' } }, config: { DATABASE_URL: 'postgres://u:secret4@h/db' } }, 'x');
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(JSON.stringify(line)).not.toMatch(/secret\d/);
    expect(line).toMatchObject({ token: '[redacted]', account: { googlePassword: '[redacted]' }, request: { ssh: { privateKey: '[redacted]' } } });
  });
});
