import { readFileSync } from 'node:fs';
import { ConfigError, type Problem } from '../../common/src/errors.js';
import { parseFlags } from '../../common/src/flags.js';
import { readOptions, SIDECAR_FLAGS, type SidecarOptions } from '../../common/src/sidecar-options.js';

export { SIDECAR_FLAGS };

/** The sidecar's configuration, validated and frozen. Durations in ms. */
export interface SidecarConfig extends SidecarOptions {
  pod: { name: string; namespace: string; uid: string };
  /** From --ca-file or --ca-pem; undefined: the default trust store. */
  caPem: string | undefined;
  /** --ca-file, read again on every connection (its CA bundle may rotate). */
  caFile: string | undefined;
}

/**
 * Flags, then RELAY_* env, then defaults → a frozen config. Throws ConfigError listing every problem found, each
 * naming its flag (flags that do not parse are reported first, all of them, before any other check).
 */
export function loadSidecarConfig(argv: readonly string[], env: NodeJS.ProcessEnv): SidecarConfig {
  const f = parseFlags(SIDECAR_FLAGS, argv, env);
  const problems: Problem[] = [];
  const options = readOptions(f, problems);
  for (const name of ['pod-name', 'pod-namespace'] as const) if (!f[name]) problems.push({ flag: name, message: `--${name} is required (set it from the downward API)` });
  let caPem = f['ca-pem'];
  if (f['ca-file'] !== undefined) caPem = readFile('ca-file', f['ca-file'], problems);
  if (f['token-file'] !== undefined) readFile('token-file', f['token-file'], problems);
  if (problems.length > 0) throw ConfigError.of(problems);
  return Object.freeze({
    ...options,
    pod: Object.freeze({ name: f['pod-name']!, namespace: f['pod-namespace']!, uid: f['pod-uid'] ?? '' }),
    caPem,
    caFile: f['ca-file'],
  });
}

/** The text of the file a flag names, or undefined after adding a problem that names the flag. */
export function readFile(flag: string, file: string, problems: Problem[]): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    problems.push({ flag, message: `--${flag}: cannot read ${file}: ${(err as Error).message}` });
    return undefined;
  }
}
