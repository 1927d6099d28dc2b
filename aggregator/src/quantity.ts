/** A value the Kubernetes Quantity type (and the HPA) cannot carry. */
export class QuantityError extends Error {
  override readonly name = 'QuantityError';
}

// The HPA reads values with MilliValue(): ceil(|q| x 1000) must fit an int64.
const MAX_MILLI = 9223372036854775807n;
const SUFFIX: Record<number, string> = { [-9]: 'n', [-6]: 'u', [-3]: 'm', 0: '', 3: 'k', 6: 'M', 9: 'G', 12: 'T', 15: 'P', 18: 'E' };

/**
 * Canonical DecimalSI Quantity string, as Go's resource.Quantity MarshalJSON writes it (docs/protocol.md#quantity).
 * The value is taken at nano precision, rounded away from zero (as ParseQuantity does), using exact decimal
 * arithmetic on the float's shortest round-trip form (String(v)), never float multiplication.
 * Throws QuantityError for NaN, ±Infinity, and |value| > 9223372036854775.807.
 */
export function formatQuantity(value: number): string {
  const problem = quantityProblem(value);
  if (problem !== undefined) throw new QuantityError(problem);
  if (value === 0) return '0'; // and -0
  const sign = value < 0 ? '-' : '';
  // The shortest round-trip decimal form, split by hand (this runs once per served value): int[.frac][e±n].
  const s = String(Math.abs(value));
  const e = s.indexOf('e');
  const mantissa = e < 0 ? s : s.slice(0, e);
  const dot = mantissa.indexOf('.');
  // value = digits x 10^exp, exactly.
  let digits = dot < 0 ? mantissa : mantissa.slice(0, dot) + mantissa.slice(dot + 1);
  let exp = (e < 0 ? 0 : Number(s.slice(e + 1))) - (dot < 0 ? 0 : mantissa.length - dot - 1);
  let lead = 0;
  while (digits.charCodeAt(lead) === 48) lead++;
  if (lead > 0) digits = digits.slice(lead);
  if (exp < -9) {
    // Below nano precision: cut, and round away from zero when anything non-zero was cut.
    const keep = digits.length - (-9 - exp);
    const cut = keep > 0 ? digits.slice(keep) : digits;
    const kept = keep > 0 ? digits.slice(0, keep) : '0';
    digits = /[1-9]/.test(cut) ? (BigInt(kept) + 1n).toString() : kept;
    exp = -9;
  }
  let end = digits.length;
  while (end > 1 && digits.charCodeAt(end - 1) === 48) end--;
  exp += digits.length - end;
  digits = digits.slice(0, end);
  const r = ((exp % 3) + 3) % 3;
  return `${sign}${digits}${'00'.slice(0, r)}${SUFFIX[exp - r]}`;
}

/**
 * Why a value cannot be served as a Quantity, or undefined when it can. Every other float64 is formatted: tiny
 * ones round to 1n. NOTE: Go's Quantity could print 1e300 ("1e300"), but the HPA reads it with MilliValue(),
 * whose result beyond int64 is undefined: such a value is left out (per pod) rather than misread.
 */
export function quantityProblem(value: number): string | undefined {
  if (!Number.isFinite(value)) return `${value} is not a finite number`;
  if (Math.abs(value) >= 9e15 && exceedsHpa(value)) return `|${value}| is beyond what the HPA can hold (at most 9223372036854775.807)`;
  return undefined;
}

/** Exact check of ceil(|v| x 1000) > 2^63-1 for values near the limit. */
function exceedsHpa(v: number): boolean {
  const abs = BigInt(Math.trunc(Math.abs(v)));
  return abs * 1000n + (Number.isInteger(v) ? 0n : 1000n) > MAX_MILLI;
}
