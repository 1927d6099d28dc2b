import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { parseExposition, type Family, type Format } from '../../sidecar/src/parse/index.js';
import { percentile, report } from './report.js';

// Parser throughput on a node_exporter-sized exposition, beside an existing npm parser run in the same process.

/**
 * A node_exporter-like page of about targetBytes: families with HELP and TYPE, cpu/mode and device labels,
 * counters, gauges and histograms; every 100th family is named cm_* (what the sidecar selects by default).
 */
export function nodeExporterLike(format: Format, targetBytes = 1.5 * 1024 * 1024): { body: string; families: number; samples: number } {
  const om = format === 'openmetrics';
  const out: string[] = [];
  let size = 0;
  let samples = 0;
  const line = (text: string) => {
    out.push(text);
    size += text.length + 1;
  };
  const meta = (name: string, type: string, help: string) => {
    line(`# HELP ${name} ${help}`);
    line(`# TYPE ${name} ${type}`);
  };
  const sample = (text: string) => {
    line(text);
    samples++;
  };
  let f = 0;
  for (; size < targetBytes; f++) {
    const name = `${f % 100 === 50 ? 'cm' : 'node'}_family_${f}`;
    const kind = f % 4;
    if (kind === 0) {
      // Text declares the counter by its sample name; OpenMetrics by the family name, without _total.
      meta(om ? `${name}_seconds` : `${name}_seconds_total`, 'counter', 'Seconds the CPUs spent in each mode.');
      for (let cpu = 0; cpu < 8; cpu++) {
        for (const mode of ['idle', 'iowait', 'irq', 'nice', 'softirq', 'steal', 'system', 'user']) sample(`${name}_seconds_total{cpu="${cpu}",mode="${mode}"} ${(cpu * 1000 + f * 3.25).toFixed(2)}`);
      }
    } else if (kind === 1) {
      meta(`${name}_bytes`, 'gauge', 'Filesystem size in bytes.');
      for (const dev of ['sda1', 'sda2', 'nvme0n1p1', 'tmpfs', 'overlay']) sample(`${name}_bytes{device="/dev/${dev}",fstype="ext4",mountpoint="/mnt/${dev}"} ${1.23456789e11 + f}`);
    } else if (kind === 2) {
      meta(`${name}_duration_seconds`, 'histogram', 'A histogram of request durations.');
      let c = 0;
      for (const le of ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']) sample(`${name}_duration_seconds_bucket{handler="/api/v1/query",le="${le}"} ${(c += 17)}`);
      sample(`${name}_duration_seconds_sum{handler="/api/v1/query"} 123.456`);
      sample(`${name}_duration_seconds_count{handler="/api/v1/query"} ${c}`);
    } else {
      meta(name, 'gauge', 'A plain gauge.');
      sample(`${name} ${f}`);
    }
  }
  if (om) out.push('# EOF');
  return { body: `${out.join('\n')}\n`, families: f, samples };
}

/**
 * Median milliseconds per run of each function over body. NOTE: the functions run in turns, round after round,
 * for about durationMs, so that load from elsewhere on the machine falls on all of them alike.
 */
function medians(body: string, fns: Record<string, (b: string) => unknown>, durationMs: number): Record<string, number> {
  const times: Record<string, number[]> = {};
  for (const [name, fn] of Object.entries(fns)) {
    times[name] = [];
    for (let i = 0; i < 5; i++) fn(body); // warm up
  }
  const started = performance.now();
  while (performance.now() - started < durationMs) {
    for (const [name, fn] of Object.entries(fns)) {
      const t = performance.now();
      fn(body);
      times[name]!.push(performance.now() - t);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([name, t]) => [name, percentile(t, 50)]));
}

function count(families: Family[]): number {
  return families.reduce((n, f) => n + f.samples.length, 0);
}

export async function run(): Promise<void> {
  const selected = (name: string) => name.startsWith('cm_');
  const results: Record<Format, Record<string, number>> = { text: {}, openmetrics: {} };
  const mb: Record<Format, number> = { text: 0, openmetrics: 0 };
  for (const format of ['text', 'openmetrics'] as const) {
    // As the sidecar sees it: bytes from the socket decoded to one flat string.
    const page = nodeExporterLike(format);
    const body = new TextDecoder().decode(Buffer.from(page.body));
    mb[format] = body.length / (1024 * 1024);
    const all = parseExposition(body, format);
    const some = parseExposition(body, format, selected);
    if (all.length !== page.families || count(all) !== page.samples) throw new Error(`${format}: parsed ${all.length} families, ${count(all)} samples of ${page.families}, ${page.samples}`);
    console.log(`${format} exposition: ${mb[format].toFixed(2)} MB, ${page.families} families, ${page.samples} samples; cm_* selects ${some.length} families`);
    const fns: Record<string, (b: string) => unknown> = { all: (b) => parseExposition(b, format), selected: (b) => parseExposition(b, format, selected) };
    if (format === 'text') fns['baseline'] = (b) => parsePrometheusTextFormat(b);
    results[format] = medians(body, fns, 3000);
  }
  const rate = (format: Format, name: string) => mb[format] / (results[format][name]! / 1000);
  const baseline = { name: 'parse-prometheus-text-format', value: rate('text', 'baseline') };
  report({ name: 'parser, text 0.0.4, all families', value: rate('text', 'all'), unit: 'MB/s', baseline });
  report({ name: 'parser speedup vs parse-prometheus-text-format', value: rate('text', 'all') / baseline.value, unit: 'x', target: '>= 10' });
  report({ name: 'parser, text 0.0.4, ~1% of families selected (the sidecar with --metrics cm_*)', value: rate('text', 'selected'), unit: 'MB/s', baseline });
  report({ name: 'parser speedup vs parse-prometheus-text-format, ~1% of families selected', value: rate('text', 'selected') / baseline.value, unit: 'x', target: '>= 10' });
  report({ name: 'parser, OpenMetrics, all families', value: rate('openmetrics', 'all'), unit: 'MB/s' });
  report({ name: 'parser, OpenMetrics, ~1% of families selected', value: rate('openmetrics', 'selected'), unit: 'MB/s' });
}
