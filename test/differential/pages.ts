import type { Format } from '../../sidecar/src/parse/index.js';

export { prng as rng } from '../helpers/prng.js';

// Seeded generator of exposition pages with the quirks real exporters emit, for the differential test.
// Families named cm_* are the "selected" ones; node_* families are the others, where defects are put.

/** A quirk that makes our parser and Prometheus's differ on purpose; see KNOWN_DIFFERENCES in the test. */
export type DivergentQuirk = 'text-negative-timestamp' | 'utf8-bom' | 'om-timestamp-beyond-int64';

export interface Page {
  format: Format;
  body: Buffer;
  /** At most one divergent quirk per page, so that a difference can be told apart. */
  divergent?: DivergentQuirk;
  /** The same page with a defect put into a node_* family's lines (absent if none was put). */
  defective?: Buffer;
}

const VALUES = ['0', '1', '-1', '3.14', '1e3', '1.5e-7', '12345678901234567890', 'NaN', '+Inf', '-Inf', 'Inf', '0.1', '-0', '7003.25', '.5'];
const LE = ['0.005', '0.1', '1', '1.0', '2.5', '1e3', '10000000'];
const LABEL_VALUES = ['a', '', 'with space', 'q\\"uote', 'back\\\\slash', 'new\\nline', 'é ü', '}#{', '日本'];

export function generatePage(random: () => number, big: boolean): Page {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const chance = (p: number) => random() < p;
  const om = chance(0.4);
  const nl = '\n';
  const lines: string[] = [];
  let divergent: DivergentQuirk | undefined;
  const diverge = (q: DivergentQuirk) => (divergent === undefined && chance(0.03) ? ((divergent = q), true) : false);

  const labels = (extra: string[] = []) => {
    const n = Math.floor(random() * 3);
    const parts = [...extra];
    for (let i = 0; i < n; i++) parts.push(`l${i}="${pick(LABEL_VALUES)}"`);
    if (parts.length === 0) return '';
    const sep = !om && chance(0.2) ? ' , ' : ',';
    return `{${parts.join(sep)}${chance(0.1) ? ',' : ''}}`;
  };
  const ts = () => {
    if (!chance(0.2)) return '';
    if (om) {
      if (diverge('om-timestamp-beyond-int64')) return ' 1e20';
      return ` ${pick(['1700000000.123', '1.0009', '0', '-5.5', '1e9', '1700000000'])}`;
    }
    if (diverge('text-negative-timestamp')) return ' -5';
    return ` ${pick(['1700000000123', '0', '9223372036854775807', '17'])}`;
  };
  const exemplar = () => (om && chance(0.2) ? ` # {trace_id="t${Math.floor(random() * 100)}"} ${pick(['1', '0.5', 'NaN'])}${chance(0.5) ? ' 1700000000.5' : ''}` : '');

  const families = 2 + Math.floor(random() * (big ? 200 : 8));
  const unselected: number[] = [];
  for (let f = 0; f < families; f++) {
    const selected = f === 0 || chance(0.4);
    const name = `${selected ? 'cm' : 'node'}_f${f}`;
    const type = pick(om ? (['counter', 'gauge', 'histogram', 'summary', 'unknown'] as const) : (['counter', 'gauge', 'histogram', 'summary', 'untyped'] as const));
    const repeatMeta = !om && chance(0.2);
    const meta = () => {
      lines.push(`# HELP ${name} Help for ${name} \\ with \\n escapes.`);
      lines.push(`# TYPE ${name} ${type}`);
    };
    meta();
    if (!selected) unselected.push(lines.length);
    const groups = 1 + Math.floor(random() * (big ? 20 : 3));
    for (let g = 0; g < groups; g++) {
      const group = chance(0.5) ? `g="${g}"` : `g="${g % 2}"`; // sometimes the same labels again: duplicates
      if (type === 'histogram') {
        const les = [...new Set([pick(LE), pick(LE)])].sort((a, b) => Number(a) - Number(b));
        for (const [i, le] of les.entries()) lines.push(`${name}_bucket{${group},le="${le}"} ${i + 1}${exemplar()}`);
        lines.push(`${name}_bucket{${group},le="${pick(['+Inf', '+inf', 'Inf'])}"} ${les.length + 1}`);
        lines.push(`${name}_sum{${group}} ${pick(VALUES)}`, `${name}_count{${group}} ${les.length + 1}`);
      } else if (type === 'summary') {
        lines.push(`${name}{${group},quantile="${pick(['0.5', '0.50', '0.9', '1', '0.99'])}"} ${pick(VALUES)}`);
        lines.push(`${name}_sum{${group}} ${pick(VALUES)}`, `${name}_count{${group}} 3`);
      } else {
        const sample = om && type === 'counter' ? `${name}_total` : name;
        lines.push(`${sample}${labels([group])} ${type === 'counter' ? pick(['0', '1', '42', '1e3']) : pick(VALUES)}${ts()}${type === 'counter' ? exemplar() : ''}`);
      }
      if (!om && chance(0.1)) lines.push(chance(0.5) ? '' : '# a plain comment');
    }
    if (repeatMeta) meta(); // windows_exporter repeats HELP (and TYPE) lines far apart
  }
  if (om) lines.push('# EOF');
  let text = lines.join(nl) + nl;
  if (!om && chance(0.2)) text = text.slice(0, -1); // no final newline
  if (chance(0.02)) text = text.replace(/\n/g, '\r\n'); // Windows line ends: both parsers refuse them
  const body = Buffer.from(diverge('utf8-bom') ? `\ufeff${text}` : text);

  let defective: Buffer | undefined;
  if (unselected.length > 0 && chance(0.5)) {
    // A defect on a line of an unselected family (after its HELP and TYPE lines).
    const at = pick(unselected);
    const defect = pick(['node_broken{a="1" 1', 'node_broken{a="1"} one', 'node_broken{a="\\t"} 1', '# TYPE node_broken countr', 'node_broken 1\r', 'node_broken{a="\xff"} 1']);
    const copy = [...lines];
    copy.splice(at, 0, defect);
    // The \xff defect is one invalid byte: that line is written as latin1, the others as UTF-8.
    defective = Buffer.concat(copy.map((l) => Buffer.from(l + nl, l.includes('\xff') ? 'latin1' : 'utf8')));
  }
  return { format: om ? 'openmetrics' : 'text', body, divergent, defective };
}
