import { readFileSync } from 'node:fs';
import { ConfigError } from '../../common/src/errors.js';
import { parseDuration } from '../../common/src/duration.js';

export type Aggregation = 'sum' | 'avg' | 'max' | 'min';
export type StaleMode = 'omit' | 'serve-last';

/** What applies to one metric name after rules are resolved. */
export interface MetricPolicy {
  aggregation: Aggregation;
  /** undefined: 3x the pod's scrape interval, floor 15s (or --stale-after when given). */
  staleAfterMs: number | undefined;
  stale: StaleMode;
  /** With serve-last: how old a value may get before it is omitted anyway. */
  maxAgeMs: number;
}

/** Per-metric rules, compiled once from the --config file. The first rule whose pattern matches wins. */
export interface Rules {
  forMetric(name: string): MetricPolicy;
}

const DEFAULT_POLICY: MetricPolicy = Object.freeze({ aggregation: 'sum', staleAfterMs: undefined, stale: 'omit', maxAgeMs: 5 * 60_000 });

/**
 * The --config file (JSON): {"metrics": [{"name": "cm_queue_*", "aggregation": "max", "staleAfter": "30s",
 * "stale": "serve-last", "maxAge": "5m"}]}. Unknown keys and bad values are errors naming the rule.
 */
export function compileRules(text: string, source: string): Rules {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid JSON: ${(err as Error).message}`);
  }
  const problems: string[] = [];
  const rules: { pattern: RegExp; policy: MetricPolicy }[] = [];
  if (!isObject(doc) || Object.keys(doc).some((k) => k !== 'metrics') || !Array.isArray(doc['metrics'])) {
    throw new ConfigError(`${source}: expected an object {"metrics": [ ...rules ]}`);
  }
  (doc['metrics'] as unknown[]).forEach((raw, i) => {
    const where = `${source}: metrics[${i}]`;
    if (!isObject(raw)) return void problems.push(`${where}: not an object`);
    for (const k of Object.keys(raw)) if (!['name', 'aggregation', 'staleAfter', 'stale', 'maxAge'].includes(k)) problems.push(`${where}: unknown key "${k}"`);
    const name = raw['name'];
    if (typeof name !== 'string' || name === '') return void problems.push(`${where}: "name" (a metric name or glob) is required`);
    const policy: MetricPolicy = { ...DEFAULT_POLICY };
    const agg = raw['aggregation'];
    if (agg !== undefined) {
      if (agg === 'sum' || agg === 'avg' || agg === 'max' || agg === 'min') policy.aggregation = agg;
      else problems.push(`${where}: aggregation must be sum, avg, max or min, not ${JSON.stringify(agg)}`);
    }
    const stale = raw['stale'];
    if (stale !== undefined) {
      if (stale === 'omit' || stale === 'serve-last') policy.stale = stale;
      else problems.push(`${where}: stale must be omit or serve-last, not ${JSON.stringify(stale)}`);
    }
    for (const [key, field] of [['staleAfter', 'staleAfterMs'], ['maxAge', 'maxAgeMs']] as const) {
      const v = raw[key];
      if (v === undefined) continue;
      const ms = typeof v === 'string' ? parseDuration(v) : undefined;
      if (ms === undefined || ms <= 0) problems.push(`${where}: ${key} must be a duration like "30s", not ${JSON.stringify(v)}`);
      else policy[field] = ms;
    }
    rules.push({ pattern: globToRegExp(name), policy: Object.freeze(policy) });
  });
  if (problems.length > 0) throw new ConfigError(problems.join('; '));
  const cache = new Map<string, MetricPolicy>();
  return {
    forMetric(name) {
      let p = cache.get(name);
      if (!p) {
        p = rules.find((r) => r.pattern.test(name))?.policy ?? DEFAULT_POLICY;
        if (cache.size > 100_000) cache.clear();
        cache.set(name, p);
      }
      return p;
    },
  };
}

export const noRules: Rules = { forMetric: () => DEFAULT_POLICY };

export function loadRules(path: string): Rules {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`--config: cannot read ${path}: ${(err as Error).message}`);
  }
  return compileRules(text, path);
}

/** `*` matches any run of characters, `?` one; everything else is literal. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
