/**
 * Compiles --metrics (names and globs: `*` any run, `?` one character) into a family-name predicate.
 * A counter family appears as `x` in OpenMetrics and `x_total` in text 0.0.4; a pattern for either name selects it.
 */
export function compileSelection(patterns: string[]): (familyName: string) => boolean {
  const res = patterns.map((p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`));
  const cache = new Map<string, boolean>();
  return (name) => {
    let hit = cache.get(name);
    if (hit === undefined) {
      hit = res.some((r) => r.test(name) || r.test(`${name}_total`));
      if (cache.size < 100_000) cache.set(name, hit);
    }
    return hit;
  };
}
