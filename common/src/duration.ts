const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go-style duration ("500ms", "5s", "1m30s", "0") into milliseconds. Returns undefined when malformed. */
export function parseDuration(input: string): number | undefined {
  const s = input.trim();
  if (s === '0') return 0;
  let total = 0;
  let i = 0;
  if (s.length === 0) return undefined;
  while (i < s.length) {
    let j = i;
    while (j < s.length && ((s[j]! >= '0' && s[j]! <= '9') || s[j] === '.')) j++;
    if (j === i) return undefined;
    const num = Number(s.slice(i, j));
    let k = j;
    while (k < s.length && !((s[k]! >= '0' && s[k]! <= '9') || s[k] === '.')) k++;
    const unit = UNITS[s.slice(j, k)];
    if (!Number.isFinite(num) || unit === undefined) return undefined;
    total += num * unit;
    i = k;
  }
  return total;
}

/** Formats milliseconds as a Go-style duration ("1m30s", "500ms"). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest / 1000}s`);
  return parts.join('');
}
