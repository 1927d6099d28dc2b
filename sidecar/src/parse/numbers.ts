// Numbers as both Prometheus parsers read them (Go's strconv), from a slice of the page without a substring.

export const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/**
 * s[i..j) as Go's strconv.ParseFloat reads it, minus what both Prometheus parsers reject (hex, underscores):
 * a decimal, or case-insensitive `[+-]Inf`, `[+-]Infinity`, `NaN`. undefined if invalid or out of range.
 */
export function parseFloatAt(s: string, i: number, j: number): number | undefined {
  let c = s.charCodeAt(i);
  let k = i;
  if (c === 43 || c === 45) c = s.charCodeAt(++k);
  if ((c >= 48 && c <= 57) || c === 46) {
    const v = parseDecimalAt(s, k, j, 0);
    return v === undefined ? undefined : s.charCodeAt(i) === 45 ? -v : v;
  }
  const len = j - k;
  if ((len === 3 || len === 8) && matchesLower(s, k, j, 'infinity')) return s.charCodeAt(i) === 45 ? -Infinity : Infinity;
  if (k === i && len === 3 && matchesLower(s, k, j, 'nan')) return Number.NaN;
  return undefined;
}

/** Whether s[i..j) equals the start of word, ignoring ASCII case. */
export function matchesLower(s: string, i: number, j: number, word: string): boolean {
  for (let k = 0; k < j - i; k++) if ((s.charCodeAt(i + k) | 0x20) !== word.charCodeAt(k)) return false;
  return true;
}

export function parseFloatString(t: string | undefined): number | undefined {
  return t === undefined ? undefined : parseFloatAt(t, 0, t.length);
}

/** A signed decimal (no Inf/NaN), as OpenMetrics wants for `le` and `quantile`. */
export function parseDecimalString(t: string | undefined): number | undefined {
  if (t === undefined) return undefined;
  const c = t.charCodeAt(0);
  const sign = c === 43 || c === 45 ? 1 : 0;
  const v = parseDecimalAt(t, sign, t.length, 0);
  return v !== undefined && c === 45 ? -v : v;
}

/**
 * Unsigned decimal `digits[.digits][e[+-]digits]` (or `.digits...`) in s[i..j), times 10^shift; undefined if
 * invalid or infinite. NOTE: up to 15 significant digits and a power of ten up to 22 this is exact and correctly
 * rounded without slicing (a double holds both exactly, so one multiplication or division rounds once); anything
 * else goes through Number().
 */
export function parseDecimalAt(s: string, i: number, j: number, shift: number): number | undefined {
  const start = i;
  let m = 0;
  let sig = 0;
  let digits = 0;
  let exp = shift;
  let c = s.charCodeAt(i);
  while (c >= 48 && c <= 57 && i < j) {
    m = m * 10 + (c - 48);
    if (m !== 0) sig++;
    digits++;
    c = s.charCodeAt(++i);
  }
  if (c === 46 && i < j) {
    c = s.charCodeAt(++i);
    while (c >= 48 && c <= 57 && i < j) {
      m = m * 10 + (c - 48);
      if (m !== 0) sig++;
      digits++;
      exp--;
      c = s.charCodeAt(++i);
    }
  }
  if (digits === 0) return undefined;
  const mantissaEnd = i;
  let e = 0;
  if ((c === 101 || c === 69) && i < j) {
    c = s.charCodeAt(++i);
    const negative = c === 45;
    if (c === 43 || c === 45) c = s.charCodeAt(++i);
    let expDigits = 0;
    while (c >= 48 && c <= 57 && i < j) {
      if (e < 1e6) e = e * 10 + (c - 48);
      expDigits++;
      c = s.charCodeAt(++i);
    }
    if (expDigits === 0) return undefined;
    if (negative) e = -e;
  }
  if (i !== j) return undefined;
  exp += e;
  let v: number;
  if (m === 0) v = 0;
  else if (sig <= 15 && exp >= -22 && exp <= 22) v = exp >= 0 ? m * POW10[exp]! : m / POW10[-exp]!;
  else v = Number(`${s.slice(start, mantissaEnd)}e${e + shift}`);
  return v === Infinity ? undefined : v;
}

/** Text timestamp: a signed integer of milliseconds that fits int64 (expfmt's strconv.ParseInt). */
export function parseIntAt(s: string, i: number, j: number): number | undefined {
  let c = s.charCodeAt(i);
  const negative = c === 45;
  if (c === 43 || c === 45) c = s.charCodeAt(++i);
  if (i >= j || j - i > 19) return undefined;
  const start = i;
  let v = 0;
  for (; i < j; c = s.charCodeAt(++i)) {
    if (c < 48 || c > 57) return undefined;
    v = v * 10 + (c - 48);
  }
  if (j - start > 15) {
    // NOTE: past 15 digits the sum above is not exact: compare the digits with int64's bounds, round once.
    const digits = s.slice(start, j);
    if (j - start === 19 && digits > (negative ? '9223372036854775808' : '9223372036854775807')) return undefined;
    v = Number(digits);
  }
  return negative ? -v : v;
}
