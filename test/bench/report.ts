/** One printed benchmark figure, beside its target and, where there is one, a baseline measured in the same run. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** e.g. ">= 200000" or "<= 5"; compared against value to print PASS/MISS. */
  target?: string;
  /** A baseline measured in the same process, printed as value/baseline. */
  baseline?: { name: string; value: number };
}

function meets(value: number, target: string): boolean {
  const m = /^(>=|<=)\s*([0-9.e+]+)$/.exec(target.trim());
  if (!m) return true;
  const bound = Number(m[2]);
  return m[1] === '>=' ? value >= bound : value <= bound;
}

export function report(f: Figure): void {
  const parts = [`${f.name}: ${fmt(f.value)} ${f.unit}`];
  if (f.baseline) parts.push(`(${f.baseline.name}: ${fmt(f.baseline.value)} ${f.unit}, ratio ${fmt(f.value / f.baseline.value)}x)`);
  if (f.target) parts.push(`target ${f.target} ${f.unit} -> ${meets(f.value, f.target) ? 'PASS' : 'MISS'}`);
  console.log(parts.join('  '));
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US');
  return n.toPrecision(3);
}

/** Percentile of an unsorted sample (nearest rank). */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
