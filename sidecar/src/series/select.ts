/**
 * Compiles --metrics (names and globs: `*` any run of characters, `?` one) into a predicate on family names.
 * A counter family is named `x` in OpenMetrics and `x_total` in text 0.0.4; a pattern written for either name
 * selects it, so `http_requests_total` works whatever format the app serves. Patterns must be valid
 * (isValidPattern in common/src/sidecar-options.ts). The predicate is pure and caches its answers (bounded).
 */
export function compileSelection(patterns: readonly string[]): (familyName: string) => boolean {
  const exact = new Set(patterns.filter((p) => !/[*?]/.test(p)));
  const globs = patterns.filter((p) => /[*?]/.test(p)).map((p) => new RegExp(`^${p.replace(/\*/g, '.*').replace(/\?/g, '.')}$`));
  const matches = (n: string) => exact.has(n) || globs.some((g) => g.test(n));
  const cache = new Map<string, boolean>();
  return (name) => {
    let hit = cache.get(name);
    if (hit === undefined) {
      hit = matches(name) || matches(`${name}_total`);
      // NOTE: family names come from the app; the bound keeps a pathological exposition from growing memory.
      if (cache.size < 10_000) cache.set(name, hit);
    }
    return hit;
  };
}
