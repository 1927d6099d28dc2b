import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { parseExposition } from '../../sidecar/src/parse/exposition.js';
import { report } from './report.js';

// Parser throughput on a node_exporter-sized exposition, beside an existing npm parser run in the same process.

/** A node_exporter-like page: many families with HELP/TYPE, cpu/mode/device labels, counters, gauges, histograms. */
export function nodeExporterLike(targetBytes = 1.5 * 1024 * 1024): string {
  const out: string[] = [];
  let size = 0;
  let f = 0;
  const add = (line: string) => {
    out.push(line);
    size += line.length + 1;
  };
  while (size < targetBytes) {
    const kind = f % 4;
    const name = `node_family_${f}`;
    if (kind === 0) {
      add(`# HELP ${name}_seconds_total Seconds the CPUs spent in each mode.`);
      add(`# TYPE ${name}_seconds_total counter`);
      for (let cpu = 0; cpu < 8; cpu++) for (const mode of ['idle', 'iowait', 'irq', 'nice', 'softirq', 'steal', 'system', 'user']) add(`${name}_seconds_total{cpu="${cpu}",mode="${mode}"} ${(cpu * 1000 + f * 3.25).toFixed(2)}`);
    } else if (kind === 1) {
      add(`# HELP ${name}_bytes Filesystem size in bytes.`);
      add(`# TYPE ${name}_bytes gauge`);
      for (const dev of ['sda1', 'sda2', 'nvme0n1p1', 'tmpfs', 'overlay']) add(`${name}_bytes{device="/dev/${dev}",fstype="ext4",mountpoint="/mnt/${dev}"} ${1.23456789e11 + f}`);
    } else if (kind === 2) {
      add(`# HELP ${name}_duration_seconds A histogram of request durations.`);
      add(`# TYPE ${name}_duration_seconds histogram`);
      let c = 0;
      for (const le of ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']) add(`${name}_duration_seconds_bucket{handler="/api/v1/query",le="${le}"} ${(c += 17)}`);
      add(`${name}_duration_seconds_sum{handler="/api/v1/query"} 123.456`);
      add(`${name}_duration_seconds_count{handler="/api/v1/query"} ${c}`);
    } else {
      add(`# HELP ${name} A plain gauge.`);
      add(`# TYPE ${name} gauge`);
      add(`${name} ${f}`);
    }
    f++;
  }
  return `${out.join('\n')}\n`;
}

/** MB/s of fn over body: warm up, then repeat for about durationMs. */
function throughput(body: string, fn: (b: string) => unknown, durationMs = 2000): number {
  for (let i = 0; i < 3; i++) fn(body);
  const started = performance.now();
  let runs = 0;
  while (performance.now() - started < durationMs) {
    fn(body);
    runs++;
  }
  const seconds = (performance.now() - started) / 1000;
  return (body.length * runs) / (1024 * 1024) / seconds;
}

export async function run(): Promise<void> {
  // As the sidecar sees it: bytes from the socket decoded to one flat string.
  const body = new TextDecoder().decode(Buffer.from(nodeExporterLike()));
  const families = body.split('# TYPE').length - 1;
  console.log(`exposition: ${(body.length / 1024 / 1024).toFixed(2)} MB, ${families} families, ${body.split('\n').length} lines`);
  const baseline = throughput(body, (b) => parsePrometheusTextFormat(b));
  const ours = throughput(body, (b) => parseExposition(b, 'text'));
  // About 1% of families selected, as a sidecar with `--metrics cm_*` sees a node_exporter-sized page.
  const selectedOnly = throughput(body, (b) => parseExposition(b, 'text', (n) => n.endsWith('7_bytes') || n.endsWith('99')));
  report({ name: 'parser, all families', value: ours, unit: 'MB/s', baseline: { name: 'parse-prometheus-text-format', value: baseline } });
  report({ name: 'parser speedup vs parse-prometheus-text-format, all families', value: ours / baseline, unit: 'x', target: '>= 10' });
  report({ name: 'parser, ~1% of families selected (the sidecar with --metrics cm_*)', value: selectedOnly, unit: 'MB/s', baseline: { name: 'parse-prometheus-text-format', value: baseline } });
  report({ name: 'parser speedup vs parse-prometheus-text-format, as the sidecar parses', value: selectedOnly / baseline, unit: 'x', target: '>= 10' });
}
