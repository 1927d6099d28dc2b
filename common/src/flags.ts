import { ConfigError, quoteValue, type Problem } from './errors.js';
import { parseDuration } from './duration.js';

export type FlagKind = 'string' | 'int' | 'port' | 'duration' | 'bool';

/**
 * One command-line flag. Every flag also reads the env var RELAY_<NAME_IN_UPPER_SNAKE>; the flag wins.
 * Declare a command's list `as const satisfies readonly FlagSpec[]` so that parseFlags types its values.
 */
export interface FlagSpec {
  readonly name: string;
  readonly kind: FlagKind;
  readonly default?: string | number | boolean;
  readonly help: string;
}

/** What each kind parses to: durations in milliseconds, ints and ports as numbers. */
interface KindValue {
  string: string;
  int: number;
  port: number;
  duration: number;
  bool: boolean;
}

/** The parsed values of a spec list, by flag name: a flag with a default always has a value, others may not. */
export type FlagValues<S extends readonly FlagSpec[]> = {
  [F in S[number] as F['name']]: F extends { default: string | number | boolean } ? KindValue[F['kind']] : KindValue[F['kind']] | undefined;
};

/** The env var a flag reads: --api-port -> RELAY_API_PORT. */
export function envName(flag: string): string {
  return `RELAY_${flag.replace(/-/g, '_').toUpperCase()}`;
}

/** argv split against the specs: the raw values given (true: a bare bool flag), the flags nobody knows, problems. */
interface SplitArgv {
  given: Map<string, string | true>;
  unknown: string[];
  problems: Problem[];
}

/**
 * Splits argv without guessing from the values themselves (node's util.parseArgs refuses a value starting with
 * `-`, such as a PEM): a non-bool flag always takes the next element as its value, `--flag=value` splits at the
 * first `=`, a bool flag takes no separate value, `--` ends the flags. The last of a repeated flag wins.
 */
function splitArgv(specs: readonly FlagSpec[], argv: readonly string[]): SplitArgv {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const out: SplitArgv = { given: new Map(), unknown: [], problems: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      // NOTE: no command takes positional arguments, so whatever follows is reported, not dropped.
      for (const rest of argv.slice(i + 1)) out.problems.push({ message: `unexpected argument ${quoteValue(rest)}` });
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      out.problems.push({ message: `unexpected argument ${quoteValue(arg)} (flags are --name value or --name=value)` });
      continue;
    }
    const eq = arg.indexOf('=');
    const token = eq < 0 ? arg : arg.slice(0, eq);
    const spec = token.startsWith('--') ? byName.get(token.slice(2)) : undefined;
    if (!spec) {
      out.unknown.push(token);
      out.problems.push({ message: `unknown flag ${quoteValue(token)}` });
    } else if (eq >= 0) {
      out.given.set(spec.name, arg.slice(eq + 1));
    } else if (spec.kind === 'bool') {
      out.given.set(spec.name, true);
    } else if (i + 1 < argv.length) {
      out.given.set(spec.name, argv[++i]!);
    } else {
      out.problems.push({ flag: spec.name, message: `--${spec.name} needs a value` });
    }
  }
  return out;
}

/** Whether argv asks for help: `--help` or `-h` where a flag stands (not as the value of another flag). */
export function asksForHelp(specs: readonly FlagSpec[], argv: readonly string[]): boolean {
  return splitArgv(specs, argv).unknown.some((t) => t === '--help' || t === '-h');
}

/**
 * Parses argv, env and defaults against specs. Durations become milliseconds, ports and ints numbers.
 * Throws one ConfigError listing every problem (unknown flags, missing or bad values), each naming its flag.
 */
export function parseFlags<const S extends readonly FlagSpec[]>(specs: S, argv: readonly string[], env: NodeJS.ProcessEnv): FlagValues<S> {
  const { given, problems } = splitArgv(specs, argv);
  const out: Record<string, string | number | boolean | undefined> = {};
  for (const s of specs) {
    const fromArgv = given.get(s.name);
    const fromEnv = env[envName(s.name)];
    if (fromArgv !== undefined) out[s.name] = convert(s, fromArgv, `--${s.name}`, problems);
    else if (fromEnv !== undefined) out[s.name] = convert(s, fromEnv, `${envName(s.name)} (--${s.name})`, problems);
    // Defaults are written as a user would type them ('5s'), and converted like given values.
    else if (s.default !== undefined) out[s.name] = convert(s, typeof s.default === 'boolean' ? s.default : String(s.default), `--${s.name} (default)`, problems);
    else out[s.name] = undefined;
  }
  if (problems.length > 0) throw ConfigError.of(problems);
  // NOTE: the one cast: each value was converted by its spec's kind just above.
  return out as FlagValues<S>;
}

function parseBool(raw: string): boolean | undefined {
  if (/^(true|1|yes)$/i.test(raw)) return true;
  if (/^(false|0|no|)$/i.test(raw)) return false;
  return undefined;
}

/** The value of `raw` for spec `s`, or undefined after adding a problem that names `source`. */
function convert(s: FlagSpec, raw: string | boolean, source: string, problems: Problem[]): string | number | boolean | undefined {
  const bad = (what: string) => {
    problems.push({ flag: s.name, message: `${source}: ${quoteValue(String(raw))} is not ${what}` });
    return undefined;
  };
  if (typeof raw === 'boolean') return raw;
  switch (s.kind) {
    case 'string':
      return raw;
    case 'bool':
      return parseBool(raw) ?? bad('a boolean (true or false)');
    case 'int': {
      const n = Number(raw);
      return raw.trim() === '' || !Number.isSafeInteger(n) || n < 0 ? bad('a non-negative integer') : n;
    }
    case 'port': {
      const n = Number(raw);
      return raw.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535 ? bad('a port number (0-65535)') : n;
    }
    case 'duration':
      return parseDuration(raw) ?? bad('a duration (e.g. 500ms, 5s, 1m)');
  }
}

/** The --help text of a subcommand. */
export function usage(command: string, summary: string, specs: readonly FlagSpec[]): string {
  const lines = [
    `Usage: metrics-relay ${command} [flags]`,
    '',
    summary,
    '',
    "Each flag takes its value as --flag value or --flag=value, and a value may start with '-' (a PEM, a selector).",
    'Booleans are --flag, --flag=true or --flag=false.',
    '',
    'Flags (each also read from the env var shown):',
  ];
  for (const s of specs) {
    const arg = s.kind === 'bool' ? '' : ` <${s.kind}>`;
    const def = s.default === undefined ? '' : ` (default ${String(s.default)})`;
    lines.push(`  --${s.name}${arg}`, `      ${s.help}${def}  [${envName(s.name)}]`);
  }
  return lines.join('\n');
}
