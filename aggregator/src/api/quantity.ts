/** A value the Kubernetes Quantity type (and the HPA) cannot carry. */
export class QuantityError extends Error {
  override readonly name = 'QuantityError';
}

// The HPA reads values with MilliValue(): ceil(|q| x 1000) must fit an int64.
const MAX_MILLI = 9223372036854775807n;
const SUFFIX: Record<number, string> = { [-9]: 'n', [-6]: 'u', [-3]: 'm', 0: '', 3: 'k', 6: 'M', 9: 'G', 12: 'T', 15: 'P', 18: 'E' };

/**
 * Canonical DecimalSI Quantity string, as Go's resource.Quantity MarshalJSON writes it (wire-spec §3.2).
 * The value is taken at nano precision, rounded away from zero (as ParseQuantity does), using exact decimal
 * arithmetic on the float's shortest round-trip form (String(v)), never float multiplication.
 * Throws QuantityError for NaN, ±Infinity, and |value| > 9223372036854775.807.
 */
export function formatQuantity(value: number): string {
  if (!Number.isFinite(value)) throw new QuantityError(`${value} is not a finite number`);
  const nanos = toNanos(value);
  const negative = nanos < 0n;
  let mantissa = negative ? -nanos : nanos;
  if (mantissa === 0n) return '0';
  if ((mantissa + 999_999n) / 1_000_000n > MAX_MILLI) throw new QuantityError(`|${value}| is beyond what the HPA can hold (at most 9223372036854775.807)`);
  let exp = -9;
  while (mantissa % 10n === 0n) {
    mantissa /= 10n;
    exp++;
  }
  const r = ((exp % 3) + 3) % 3;
  mantissa *= 10n ** BigInt(r);
  exp -= r;
  return `${negative ? '-' : ''}${mantissa}${SUFFIX[exp]}`;
}

/** Exact nanos of the shortest decimal form of v, rounded away from zero. */
function toNanos(v: number): bigint {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(v));
  if (!m) throw new QuantityError(`cannot represent ${v}`);
  const [, sign, int, frac = '', e = '0'] = m;
  let digits = BigInt(int! + frac);
  // value = digits x 10^(exp10); nanos = digits x 10^(exp10 + 9)
  const shift = Number(e) - frac.length + 9;
  if (shift >= 0) digits *= 10n ** BigInt(shift);
  else {
    const div = 10n ** BigInt(-shift);
    const q = digits / div;
    digits = digits % div === 0n ? q : q + 1n;
  }
  return sign === '-' ? -digits : digits;
}
