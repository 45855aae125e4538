import { parseFlags, UsageError, type Flag } from './args.js';
import { connect, DEFAULT_SERVER, resolveServer, resolveToken } from './client.js';
import type { Command, Resource } from './command.js';
import { RESOURCES } from './commands.js';
import { describeServiceError, isServiceError } from './errors.js';

const GLOBAL_FLAGS = `Flags every verb takes:
  --server HOST:PORT  write service (default: $TITANBOT_SERVER, else ${DEFAULT_SERVER})
  --token TOKEN       admin token (default: $TITANBOT_ADMIN_TOKEN, else field data.current of
                      $DATA_DIR/secrets/admin-token.json, DATA_DIR default .data)
  --table             a table instead of JSON (lists: one row per item)
  --tls               connect with TLS, verifying the server with the system's trust store
  --ca-file PATH      connect with TLS, verifying the server with this CA (PEM)
  --help              this help, or a resource's verbs and flags`;

/** `titanctl --help`: every resource and its verbs. */
export function usage(): string {
  const width = Math.max(...RESOURCES.map((r) => r.name.length));
  const lines = RESOURCES.map((r) => `  ${r.name.padEnd(width)}  ${r.commands.map((c) => c.verb).join(' ')}`);
  return `Usage: titanctl <resource> <verb> [flags]

Calls the write service's admin API and prints the response as JSON. Exit codes: 0 done,
1 the call failed (status code and field violations on stderr), 2 bad command line.

Resources and verbs (titanctl <resource> --help for flags):
${lines.join('\n')}

${GLOBAL_FLAGS}`;
}

function flagLine(f: Flag<unknown>): string {
  const name = `--${f.name}${f.switch ? '' : ` ${f.parser.metavar}`}`;
  const notes = [f.help, f.required ? 'required' : '', f.repeat && !f.help.includes('repeatable') ? 'repeatable' : ''].filter(Boolean);
  return `      ${name.padEnd(38)} ${notes.join('; ')}`.trimEnd();
}

function commandUsage(resource: Resource, c: Command): string {
  const arg = c.positional ? ` [${c.positional.parser.metavar}]` : '';
  return [`  ${resource.name} ${c.verb}${arg}: ${c.summary}`, ...c.flags.map(flagLine)].join('\n');
}

/** `titanctl <resource> --help`: the resource's verbs with their flags. */
export function resourceUsage(resource: Resource): string {
  return `Usage: titanctl ${resource.name} <verb> [flags]  (${resource.summary})

${resource.commands.map((c) => commandUsage(resource, c)).join('\n\n')}

${GLOBAL_FLAGS}`;
}

const isHelp = (arg: string | undefined): boolean => arg === '--help' || arg === '-h' || arg === 'help';

function usageError(message: string, help: string): number {
  process.stderr.write(`titanctl: ${message}\n\n${help}\n`);
  return 2;
}

/**
 * Runs `titanctl <resource> <verb> [flags]` (`argv` without node and script) and resolves with the
 * exit code: 0 done (the response on stdout), 1 the call failed or no admin token was found (one
 * line `titanctl: <CODE>: <message>` on stderr, then field violations and the ErrorInfo reason),
 * 2 a bad command line (the message, then the resource's usage, on stderr). Never prints a stack.
 */
export async function main(argv: string[]): Promise<number> {
  const [resourceName, verb, ...rest] = argv;
  if (isHelp(resourceName)) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (resourceName === undefined) return usageError('missing resource', usage());
  const resource = RESOURCES.find((r) => r.name === resourceName);
  if (!resource) return usageError(`unknown resource: ${resourceName}`, usage());
  if (isHelp(verb)) {
    process.stdout.write(`${resourceUsage(resource)}\n`);
    return 0;
  }
  const command = resource.commands.find((c) => c.verb === verb);
  if (!command) return usageError(verb === undefined ? 'missing verb' : `unknown verb: ${resource.name} ${verb}`, resourceUsage(resource));

  let server = DEFAULT_SERVER;
  let api: ReturnType<typeof connect> | undefined;
  try {
    const { values, options } = parseFlags(rest, command.flags, command.positional);
    if (options.help) {
      process.stdout.write(`${commandUsage(resource, command)}\n\n${GLOBAL_FLAGS}\n`);
      return 0;
    }
    server = resolveServer(options.server, process.env);
    api = connect(server, await resolveToken(options.token, process.env), options.tls ? (options.caFile ? { caFile: options.caFile } : {}) : undefined);
    const { out, note } = await command.run(api, values, options.table);
    if (out) process.stdout.write(`${out}\n`);
    if (note) process.stderr.write(`${note}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) return usageError(err.message, resourceUsage(resource));
    const lines = isServiceError(err)
      ? describeServiceError(err, server)
      : [`titanctl: ${err instanceof Error ? err.message : String(err)}`];
    process.stderr.write(`${lines.join('\n')}\n`);
    return 1;
  } finally {
    api?.close();
  }
}
