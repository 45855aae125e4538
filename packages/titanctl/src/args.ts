import { parseArgs } from 'node:util';
import type { Duration } from '@titanbot/contracts/google/protobuf/duration';
import { parseDurationMs } from '@titanbot/service-kit/config';
import { ActivityType } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { Gender } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { ShapeType, type Pixel, type Shape } from '@titanbot/contracts/titanbot/admin/v1/habit_service';

/** A command line that cannot be run: `main` prints it with the usage text and exits 2. */
export class UsageError extends Error {}

/** Turns one flag value into what the request needs; throws Error with a short reason when it cannot. */
export interface Parser<T> {
  /** Placeholder shown in help, e.g. `N` or `YYYY-MM-DD`. */
  metavar: string;
  parse(raw: string): T;
}

/**
 * A command-line flag `--<name>`. A `switch` takes no value (true when present); `repeat` collects
 * every occurrence in order; `path` is the snake_case update_mask path the flag sets on update
 * verbs; `clearable` lets `--clear <name>` put `path` in the mask with the field left unset.
 */
export interface Flag<T> {
  name: string;
  parser: Parser<T>;
  help: string;
  required?: boolean;
  repeat?: boolean;
  switch?: boolean;
  path?: string;
  clearable?: boolean;
}

/** A flag every use of which must be present: `Values.get` returns it without `undefined`. */
export type RequiredFlag<T> = Flag<T> & { required: true };

/** Declares a flag taking a value. */
export const flag = <T>(name: string, parser: Parser<T>, help: string, options: Partial<Flag<T>> = {}): Flag<T> => ({
  name,
  parser,
  help,
  ...options,
});

/** The same flag, required by the command that lists it. */
export const required = <T>(f: Flag<T>): RequiredFlag<T> => ({ ...f, required: true });

/** Declares a value-less flag such as `--global`. */
export const switchFlag = (name: string, help: string): Flag<boolean> => ({
  name,
  parser: { metavar: '', parse: () => true },
  help,
  switch: true,
});

const INT32_MAX = 2_147_483_647;

/** A decimal int32, e.g. `7` or `-1` (the server judges ranges, so its field violations reach the operator). */
export const int: Parser<number> = {
  metavar: 'N',
  parse(raw) {
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw) || n > INT32_MAX || n < -INT32_MAX - 1) throw new Error(`expected an integer, got ${JSON.stringify(raw)}`);
    return n;
  },
};

/** Any text, the empty string included. */
export const text: Parser<string> = { metavar: 'TEXT', parse: (raw) => raw };

/** An id; the server validates its form. */
export const uuid: Parser<string> = { metavar: 'UUID', parse: (raw) => raw };

/** `true` or `false`: a value rather than a switch, so that updates can set false. */
export const bool: Parser<boolean> = {
  metavar: 'true|false',
  parse(raw) {
    if (raw === 'true' || raw === 'false') return raw === 'true';
    throw new Error(`expected true or false, got ${JSON.stringify(raw)}`);
  },
};

/** `YYYY-MM-DD`, as 00:00 UTC of that day (what the API stores for dates). */
export const date: Parser<Date> = {
  metavar: 'YYYY-MM-DD',
  parse(raw) {
    const d = new Date(`${raw}T00:00:00Z`);
    if (!/^\d{4}-\d{2}-\d{2}$/.test(raw) || Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== raw) {
      throw new Error(`expected a date YYYY-MM-DD, got ${JSON.stringify(raw)}`);
    }
    return d;
  },
};

/** A span (the services' duration syntax, parseDurationMs): `3600`, `3600s`, `30m`, `24h`, `7d` or `500ms`. */
export const duration: Parser<Duration> = {
  metavar: '24h|30m|3600s',
  parse(raw) {
    const ms = parseDurationMs(raw);
    if (ms === undefined) throw new Error(`expected a duration such as 24h, 30m or 3600s, got ${JSON.stringify(raw)}`);
    return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
  },
};

/**
 * An instant: an ISO 8601 date or date-time (`2024-05-01`, `2024-05-01T12:00:00Z`), or a span
 * (`2h`, `30m`) meaning that long before now.
 */
export const instant = (now: () => number = Date.now): Parser<Date> => ({
  metavar: 'TIME|2h',
  parse(raw) {
    const ms = parseDurationMs(raw);
    if (ms !== undefined) return new Date(now() - ms);
    const d = new Date(raw);
    if (!/^\d{4}-\d{2}-\d{2}/.test(raw) || Number.isNaN(d.getTime())) {
      throw new Error(`expected an ISO date-time or a span such as 2h, got ${JSON.stringify(raw)}`);
    }
    return d;
  },
});

/** An ISO date-time, or a span from now (e.g. `30d`): when something stops, e.g. an expiry. */
export const later = (now: () => number = Date.now): Parser<Date> => ({
  metavar: 'TIME|30d',
  parse(raw) {
    const ms = parseDurationMs(raw);
    return ms !== undefined ? new Date(now() + ms) : instant(now).parse(raw);
  },
});

/** One of the lower-case names in `values`, e.g. `male` -> Gender.GENDER_MALE. */
export function oneOf<T>(values: Record<string, T>): Parser<T> {
  const names = Object.keys(values);
  return {
    metavar: names.join('|'),
    parse(raw) {
      const v = values[raw];
      if (v === undefined) throw new Error(`expected one of ${names.join(', ')}, got ${JSON.stringify(raw)}`);
      return v;
    },
  };
}

export const gender = oneOf({ male: Gender.GENDER_MALE, female: Gender.GENDER_FEMALE });
export const activityType = oneOf({ rowgplay: ActivityType.ACTIVITY_TYPE_ROWGPLAY, ajagplay: ActivityType.ACTIVITY_TYPE_AJAGPLAY });
const shapeType = oneOf({
  rectangle: ShapeType.SHAPE_TYPE_RECTANGLE,
  circle: ShapeType.SHAPE_TYPE_CIRCLE,
  triangle: ShapeType.SHAPE_TYPE_TRIANGLE,
  irregular: ShapeType.SHAPE_TYPE_IRREGULAR,
});

/** Splits `a,b,c` into exactly `min`..`max` parts. */
function parts(raw: string, min: number, max: number, shape: string): string[] {
  const p = raw.split(',').map((s) => s.trim());
  if (p.length < min || p.length > max) throw new Error(`expected ${shape}, got ${JSON.stringify(raw)}`);
  return p;
}

/** `x,y,RRGGBB[,deviation]`; deviation defaults to 0. Hex digits and ranges are the server's to judge. */
export const pixel: Parser<Pixel> = {
  metavar: 'x,y,RRGGBB[,dev]',
  parse(raw) {
    const [x = '', y = '', rgbHex = '', deviation = '0'] = parts(raw, 3, 4, 'x,y,RRGGBB[,deviation]');
    return { x: int.parse(x), y: int.parse(y), rgbHex, deviation: int.parse(deviation) };
  },
};

/** `type,x,y,width,height,size,RRGGBB` with type rectangle|circle|triangle|irregular. */
export const shape: Parser<Shape> = {
  metavar: 'type,x,y,w,h,size,RRGGBB',
  parse(raw) {
    const [type = '', x = '', y = '', width = '', height = '', size = '', rgbHex = ''] = parts(raw, 7, 7, 'type,x,y,width,height,size,RRGGBB');
    return {
      type: shapeType.parse(type),
      x: int.parse(x),
      y: int.parse(y),
      width: int.parse(width),
      height: int.parse(height),
      size: int.parse(size),
      rgbHex,
    };
  },
};

/** The parsed flags of one command line, read through the Flag that declared each. */
export class Values {
  constructor(private readonly values: ReadonlyMap<string, readonly unknown[]>) {}

  /** Whether the flag was given. */
  has(f: Flag<unknown>): boolean {
    return this.values.has(f.name);
  }

  /** The flag's value (the last one when given several times). */
  get<T>(f: RequiredFlag<T>): T;
  get<T>(f: Flag<T>): T | undefined;
  get<T>(f: Flag<T>): T | undefined {
    return this.values.get(f.name)?.at(-1) as T | undefined;
  }

  /** Every value of a repeatable flag, in command-line order. */
  all<T>(f: Flag<T>): T[] {
    return [...(this.values.get(f.name) ?? [])] as T[];
  }
}

/** Options every command accepts (not command flags: they steer titanctl itself). */
export interface GlobalOptions {
  server?: string;
  token?: string;
  /** TLS toward the write service: with the system's trust store, or with `caFile`. */
  tls: boolean;
  caFile?: string;
  table: boolean;
  help: boolean;
}

/**
 * Parses the flags after `<resource> <verb>` against `flags` plus the global options. At most one
 * positional is accepted, as the value of `positional` (e.g. `devices get <uuid>`). Throws
 * UsageError for an unknown flag, a missing value, a value its parser rejects, a repeated
 * non-repeatable flag, or a missing required flag (unless --help is given).
 */
export function parseFlags(
  argv: string[],
  flags: readonly Flag<unknown>[],
  positional?: Flag<unknown>,
): { values: Values; options: GlobalOptions } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        server: { type: 'string' },
        token: { type: 'string' },
        tls: { type: 'boolean' },
        'ca-file': { type: 'string' },
        table: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(flags.map((f) => [f.name, { type: f.switch ? 'boolean' : 'string', multiple: true } as const])),
      },
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // parseArgs goes on about positionals starting with '-'; usage errors stay one short line.
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown flag ${/'([^']*)'/.exec(e.message)?.[1] ?? ''}`.trimEnd());
    throw new UsageError(e.message.replace(/\s*\n\s*/g, ' '));
  }
  const { server, token, tls, 'ca-file': caFile, table, help, ...rest } = parsed.values as Record<string, unknown> & Omit<GlobalOptions, 'caFile'> & { 'ca-file'?: string };
  const options: GlobalOptions = { server, token, tls: tls === true || caFile !== undefined, ...(caFile === undefined ? {} : { caFile }), table: table === true, help: help === true };
  const raw = new Map<string, unknown[]>(Object.entries(rest).map(([k, v]) => [k, v as unknown[]]));
  if (parsed.positionals.length > 0) {
    if (!positional || parsed.positionals.length > 1) throw new UsageError(`unexpected argument: ${parsed.positionals.join(' ')}`);
    if (raw.has(positional.name)) throw new UsageError(`give the ${positional.parser.metavar} either as an argument or as --${positional.name}, not both`);
    raw.set(positional.name, parsed.positionals);
  }
  const values = new Map<string, unknown[]>();
  for (const f of flags) {
    const given = raw.get(f.name);
    if (given === undefined) {
      if (f.required && !options.help) throw new UsageError(`--${f.name} is required`);
      continue;
    }
    if (given.length > 1 && !f.repeat) throw new UsageError(`--${f.name} given more than once`);
    values.set(
      f.name,
      given.map((v) => {
        try {
          return f.parser.parse(String(v));
        } catch (err) {
          throw new UsageError(`--${f.name}: ${(err as Error).message}`);
        }
      }),
    );
  }
  return { values: new Values(values), options };
}
