import { parseArgs } from 'node:util';
import { ConfigError } from './errors.js';
import { parseDuration } from './duration.js';

/** One command-line flag. Every flag also reads the env var RELAY_<NAME_IN_UPPER_SNAKE>; the flag wins. */
export interface FlagSpec {
  name: string;
  kind: 'string' | 'int' | 'port' | 'duration' | 'bool';
  default?: string | number | boolean;
  help: string;
}

export type FlagValues = Record<string, string | number | boolean | undefined>;

/** The env var a flag reads: --api-port -> RELAY_API_PORT. */
export function envName(flag: string): string {
  return `RELAY_${flag.replace(/-/g, '_').toUpperCase()}`;
}

/**
 * Parses argv, env and defaults against specs. Durations become milliseconds, ports and ints numbers.
 * Throws ConfigError naming the flag on the first bad value or unknown flag.
 */
export function parseFlags(specs: readonly FlagSpec[], argv: string[], env: NodeJS.ProcessEnv): FlagValues {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const s of specs) options[s.name] = { type: s.kind === 'bool' ? 'boolean' : 'string' };
  // Booleans also take Go's explicit form, --flag=true / --flag=false (parseArgs alone refuses a value).
  const explicit: Record<string, boolean> = {};
  const args: string[] = [];
  for (const a of argv) {
    const m = /^--([a-z0-9-]+)=(.*)$/.exec(a);
    if (m && specs.some((s) => s.name === m[1] && s.kind === 'bool')) explicit[m[1]!] = parseBool(m[2]!, `--${m[1]}`);
    else args.push(a);
  }
  let parsed: Record<string, string | boolean | undefined>;
  try {
    parsed = { ...(parseArgs({ args, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>), ...explicit };
  } catch (err) {
    throw new ConfigError((err as Error).message.split('\n')[0]!);
  }
  const out: FlagValues = {};
  for (const s of specs) {
    let raw: string | boolean | undefined = parsed[s.name];
    let source = `--${s.name}`;
    if (raw === undefined && env[envName(s.name)] !== undefined) {
      raw = env[envName(s.name)]!;
      source = `${envName(s.name)} (--${s.name})`;
      if (s.kind === 'bool') raw = parseBool(raw, source);
    }
    if (raw === undefined) {
      // Defaults are written as a user would type them ('5s'), and converted like given values.
      out[s.name] = s.default === undefined ? undefined : convert(s, typeof s.default === 'boolean' ? s.default : String(s.default), `--${s.name} (default)`);
      continue;
    }
    out[s.name] = convert(s, raw, source);
  }
  return out;
}

function parseBool(raw: string, source: string): boolean {
  if (/^(true|1|yes)$/i.test(raw)) return true;
  if (/^(false|0|no|)$/i.test(raw)) return false;
  throw new ConfigError(`${source}: "${raw}" is not a boolean (true or false)`);
}

function convert(s: FlagSpec, raw: string | boolean, source: string): string | number | boolean {
  if (typeof raw === 'boolean') return raw;
  switch (s.kind) {
    case 'string':
      return raw;
    case 'bool':
      return parseBool(raw, source);
    case 'int': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new ConfigError(`${source}: "${raw}" is not a non-negative integer`);
      return n;
    }
    case 'port': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${source}: "${raw}" is not a port number (0-65535)`);
      return n;
    }
    case 'duration': {
      const ms = parseDuration(raw);
      if (ms === undefined) throw new ConfigError(`${source}: "${raw}" is not a duration (e.g. 500ms, 5s, 1m)`);
      return ms;
    }
  }
}

/** The --help text of a subcommand. */
export function usage(command: string, summary: string, specs: readonly FlagSpec[]): string {
  const lines = [`Usage: metrics-relay ${command} [flags]`, '', summary, '', 'Flags (each also read from the env var shown):'];
  for (const s of specs) {
    const arg = s.kind === 'bool' ? '' : ` <${s.kind}>`;
    const def = s.default === undefined ? '' : ` (default ${String(s.default)})`;
    lines.push(`  --${s.name}${arg}`, `      ${s.help}${def}  [${envName(s.name)}]`);
  }
  return lines.join('\n');
}
