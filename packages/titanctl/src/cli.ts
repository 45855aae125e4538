import { flag, parseFlags, required, switchFlag, text, UsageError, type Flag } from './args.js';
import { connect, DEFAULT_SERVER, resolveCredential, resolveServer } from './client.js';
import type { Command, Resource } from './command.js';
import { RESOURCES } from './commands.js';
import { describeServiceError, isServiceError } from './errors.js';
import { alignRows, prettyJson } from './output.js';
import { importOriginal, importProgress, type TableReport } from './import.js';
import { CLIENT_SECRET_ENV, logIn, logOut, sessionPath, writeSession } from './login.js';

const GLOBAL_FLAGS = `Flags every verb takes:
  --server HOST:PORT  write service (default: $TITANBOT_SERVER, else ${DEFAULT_SERVER})
  --token TOKEN       admin token (default: $TITANBOT_ADMIN_TOKEN, else the session of
                      titanctl login, else field data.current of $DATA_DIR/secrets/admin-token.json,
                      DATA_DIR default .data)
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

Operators log in with OAuth 2.0 (titanctl login --help):
  login   sign in (device authorization for people, client credentials for automation)
  logout  revoke and forget the saved session

Moving over from the original system (titanctl import --help):
  import  load a database of the original (MariaDB/MySQL) through the admin API

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

const ISSUER = flag('issuer', text, 'the OpenID Provider (default $TITANBOT_OIDC_ISSUER)');
const CLIENT_ID = flag('client-id', text, 'the OAuth client (default $TITANBOT_OIDC_CLIENT_ID, else titanctl)');
const AUDIENCE = flag('audience', text, "resource indicator (RFC 8707): the write service's OIDC_AUDIENCE (default $TITANBOT_OIDC_AUDIENCE)");
const SCOPE = flag('scope', text, 'scopes to ask for (default: openid offline_access for people, none for automation)');
const CLIENT_CREDENTIALS = switchFlag('client-credentials', `automation: the client credentials grant, the secret read from $${CLIENT_SECRET_ENV}`);
const LOGIN_FLAGS = [ISSUER, CLIENT_ID, AUDIENCE, SCOPE, CLIENT_CREDENTIALS];

const LOGIN_USAGE = `Usage: titanctl login [flags]   titanctl logout

login: signs in to the OpenID Provider and saves the session (mode 0600) in
$TITANBOT_CONFIG_DIR/session.json (default ~/.config/titanctl/session.json). Later calls send its
access token as a bearer token and renew it before it expires. People approve a code in a browser
(OAuth 2.0 device authorization grant, RFC 8628); automation uses --client-credentials. Tokens are
never printed; stdout gets who signed in and until when.
logout: revokes the saved refresh token at the provider and removes the session file.

${LOGIN_FLAGS.map(flagLine).join('\n')}`;

/** `titanctl login|logout [flags]`; resolves with the exit code like `main`. Throws UsageError and LoginError. */
async function session(verb: 'login' | 'logout', argv: string[], now: () => number): Promise<number> {
  const { values, options } = parseFlags(argv, verb === 'login' ? LOGIN_FLAGS : []);
  if (options.help) {
    process.stdout.write(`${LOGIN_USAGE}\n`);
    return 0;
  }
  if (options.server || options.token || options.tls || options.table) throw new UsageError(`titanctl ${verb} takes no --server, --token, --tls, --ca-file or --table`);
  const file = sessionPath(process.env);
  if (verb === 'logout') {
    process.stdout.write(`${JSON.stringify({ loggedOut: await logOut(file, process.env), sessionFile: file })}\n`);
    return 0;
  }
  const env = process.env;
  const issuer = values.get(ISSUER) ?? env.TITANBOT_OIDC_ISSUER;
  if (!issuer) throw new UsageError('--issuer is required (or set TITANBOT_OIDC_ISSUER)');
  const clientSecret = values.get(CLIENT_CREDENTIALS) ? env[CLIENT_SECRET_ENV] : undefined;
  if (values.get(CLIENT_CREDENTIALS) && !clientSecret) throw new UsageError(`--client-credentials needs the client secret in $${CLIENT_SECRET_ENV}`);
  const clientId = values.get(CLIENT_ID) ?? env.TITANBOT_OIDC_CLIENT_ID ?? (clientSecret ? undefined : 'titanctl');
  if (!clientId) throw new UsageError('--client-id is required with --client-credentials (or set TITANBOT_OIDC_CLIENT_ID)');
  const audience = values.get(AUDIENCE) ?? env.TITANBOT_OIDC_AUDIENCE;
  const scope = values.get(SCOPE);
  const signedIn = await logIn(
    { issuer, clientId, ...(clientSecret ? { clientSecret } : {}), ...(audience ? { audience } : {}), ...(scope === undefined ? {} : { scope }) },
    (p) => process.stderr.write(
      `To sign in, open ${p.verificationUriComplete ?? p.verificationUri}${p.verificationUriComplete ? ` (or ${p.verificationUri} and enter ${p.userCode})` : ` and enter ${p.userCode}`}; the code expires in ${Math.round(p.expiresInS / 60)} min.\n`,
    ),
    now,
  );
  await writeSession(file, signedIn);
  process.stdout.write(`${JSON.stringify({ issuer, subject: signedIn.subject, grant: signedIn.grant, expireTime: new Date(signedIn.expiresAt).toISOString(), sessionFile: file })}\n`);
  return 0;
}

const FROM = required(flag('from', text, 'the original database: mysql://user:password@host:port/database (MariaDB or MySQL)'));
const DRY_RUN = switchFlag('dry-run', 'send every row with validate_only: the write service checks it and changes nothing; the report says what would be created, skipped and refused');
const IMPORT_USAGE = `Usage: titanctl import --from mysql://... [--dry-run] [flags]

Reads a database of the original system and loads it through the admin API in dependency order
(legions, accounts, devices with their SSH key pairs and ports, device accounts with the current
one, habits with pixels and shapes, empire dates), keeping every uuid. Rows already present are
skipped, so it is safe to run again; rows the API refuses are reported with the reason. Progress:
a bar on a terminal, JSON lines otherwise (stderr); the report, per table, on stdout. Exit 1 when
any row was refused. Daemon tokens: titanctl legacy-tokens import, one device each.

${[FROM, DRY_RUN].map(flagLine).join('\n')}

${GLOBAL_FLAGS}`;

/** `titanctl import`; resolves with the exit code like `main`. Throws UsageError, and what importOriginal throws. */
async function importCommand(argv: string[], now: () => number): Promise<number> {
  const { values, options } = parseFlags(argv, [FROM, DRY_RUN]);
  if (options.help) {
    process.stdout.write(`${IMPORT_USAGE}\n`);
    return 0;
  }
  const dryRun = values.get(DRY_RUN) === true;
  const api = connect(resolveServer(options.server, process.env), await resolveCredential(options.token, process.env, now), options.tls ? (options.caFile ? { caFile: options.caFile } : {}) : undefined);
  try {
    const reports = await importOriginal(values.get(FROM), api, dryRun, importProgress(process.stderr));
    process.stdout.write(`${options.table ? importTable(reports, dryRun) : prettyJson({ dryRun, tables: reports })}\n`);
    const refused = reports.reduce((n, r) => n + r.rejected.length, 0);
    if (refused > 0) process.stderr.write(`titanctl: ${refused} ${refused === 1 ? 'row' : 'rows'} refused; the report says which and why\n`);
    return refused > 0 ? 1 : 0;
  } finally {
    api.close();
  }
}

/** The import report as a table: one row per table of the original, then each refused row with its reason. */
function importTable(reports: TableReport[], dryRun: boolean): string {
  const header = dryRun ? ['table', 'read', 'would-create', 'would-skip', 'would-refuse'] : ['table', 'read', 'created', 'skipped', 'refused'];
  const counts = alignRows([header, ...reports.map((r) => [r.table, String(r.read), String(r.created), String(r.skipped), String(r.rejected.length)])]);
  const refusals = reports.flatMap((r) => r.rejected.map((x) => `${dryRun ? 'would refuse' : 'refused'} ${r.table} ${x.uuid}: ${x.reason}`));
  return [counts, ...(refusals.length ? ['', ...refusals] : [])].join('\n');
}

const isHelp = (arg: string | undefined): boolean => arg === '--help' || arg === '-h' || arg === 'help';

function usageError(message: string, help: string): number {
  process.stderr.write(`titanctl: ${message}\n\n${help}\n`);
  return 2;
}

/**
 * Runs `titanctl <resource> <verb> [flags]` or `titanctl login|logout [flags]` (`argv` without
 * node and script) and resolves with the exit code: 0 done (the response on stdout), 1 the call or
 * the login failed, or no credential was found (one line `titanctl: <CODE>: <message>` on stderr,
 * then field violations and the ErrorInfo reason), 2 a bad command line (the message, then the
 * usage, on stderr). Never prints a stack or a token. `now` (ms since the epoch) decides when a
 * saved access token is renewed.
 */
export async function main(argv: string[], now: () => number = Date.now): Promise<number> {
  const [resourceName, verb, ...rest] = argv;
  if (isHelp(resourceName)) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (resourceName === 'import') {
    try {
      return await importCommand(argv.slice(1), now);
    } catch (err) {
      if (err instanceof UsageError) return usageError(err.message, IMPORT_USAGE);
      const lines = isServiceError(err) ? describeServiceError(err, resolveServer(undefined, process.env), argv.some((a) => a === '--tls' || a.startsWith('--ca-file'))) : [`titanctl: import failed: ${err instanceof Error ? err.message : String(err)}`];
      process.stderr.write(`${lines.join('\n')}\n`);
      return 1;
    }
  }
  if (resourceName === 'login' || resourceName === 'logout') {
    try {
      return await session(resourceName, argv.slice(1), now);
    } catch (err) {
      if (err instanceof UsageError) return usageError(err.message, LOGIN_USAGE);
      process.stderr.write(`titanctl: ${resourceName} failed: ${err instanceof Error ? err.message : String(err)}\n`);
      return 1;
    }
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
  let tls = false;
  let api: ReturnType<typeof connect> | undefined;
  try {
    const { values, options } = parseFlags(rest, command.flags, command.positional);
    if (options.help) {
      process.stdout.write(`${commandUsage(resource, command)}\n\n${GLOBAL_FLAGS}\n`);
      return 0;
    }
    server = resolveServer(options.server, process.env);
    tls = options.tls;
    api = connect(server, await resolveCredential(options.token, process.env, now), options.tls ? (options.caFile ? { caFile: options.caFile } : {}) : undefined);
    const { out, note } = await command.run(api, values, options.table);
    if (out) process.stdout.write(`${out}\n`);
    if (note) process.stderr.write(`${note}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) return usageError(err.message, resourceUsage(resource));
    const lines = isServiceError(err)
      ? describeServiceError(err, server, tls)
      : [`titanctl: ${err instanceof Error ? err.message : String(err)}`];
    process.stderr.write(`${lines.join('\n')}\n`);
    return 1;
  } finally {
    api?.close();
  }
}
