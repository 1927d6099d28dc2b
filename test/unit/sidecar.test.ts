import { describe, expect, it } from 'vitest';
import { RateTracker } from '../../sidecar/src/rate.js';
import { compileSelection } from '../../sidecar/src/select.js';
import { parseLabelsFile } from '../../sidecar/src/labels-file.js';
import { SeriesBuilder } from '../../sidecar/src/series.js';
import { loadSidecarConfig } from '../../sidecar/src/config.js';
import { parseExposition } from '../../sidecar/src/parse/exposition.js';

describe('counter rates', () => {
  it('needs two samples, then gives the increase per second over the window', () => {
    const r = new RateTracker(10_000);
    expect(r.observe('a', 0, 100)).toBeUndefined();
    expect(r.observe('a', 1000, 110)).toBe(10);
    expect(r.observe('a', 2000, 130)).toBe(15);
  });

  it('handles resets like rate(): a decrease is a restart from zero, never a negative rate', () => {
    const r = new RateTracker(60_000);
    r.observe('a', 0, 100);
    r.observe('a', 1000, 120);
    expect(r.observe('a', 2000, 5)).toBe((20 + 5) / 2);
  });

  it('slides the window, keeping one point at or before its start', () => {
    const r = new RateTracker(2000);
    for (let t = 0; t <= 10_000; t += 1000) r.observe('a', t, t < 5000 ? t / 100 : 50 + (t - 5000) / 10);
    // The window keeps 8s..10s: values 350, 450, 550, so +200 over 2s.
    expect(r.observe('a', 10_000, 550)).toBe(100);
  });

  it('forgets series that left the exposition', () => {
    const r = new RateTracker(1000);
    r.observe('a', 0, 1);
    r.observe('b', 0, 1);
    r.retain(new Set(['b']));
    expect(r.size).toBe(1);
  });
});

describe('selection', () => {
  it('matches names and globs; a counter selects by either of its names', () => {
    const sel = compileSelection(['cm_*', 'http_requests_total', 'up?']);
    expect(sel('cm_connection_count')).toBe(true);
    expect(sel('http_requests_total')).toBe(true);
    expect(sel('http_requests')).toBe(true); // the OpenMetrics name of that counter family
    expect(sel('up1')).toBe(true);
    expect(sel('up12')).toBe(false);
    expect(sel('node_cpu_seconds_total')).toBe(false);
  });
});

describe('labels file (downwardAPI volume format)', () => {
  it('reads key="value" lines with Go quoting', () => {
    expect(parseLabelsFile('app="web"\npod-template-hash="7d4b9c8f6b"\nnote="a \\"quoted\\" \\\\ value"\nbroken\n')).toEqual({ app: 'web', 'pod-template-hash': '7d4b9c8f6b', note: 'a "quoted" \\ value' });
  });
});

describe('series from a scrape', () => {
  const text = '# TYPE http_requests_total counter\nhttp_requests_total{path="/a"} 10\n# TYPE cm_q gauge\ncm_q 3\n# TYPE lat histogram\nlat_bucket{le="+Inf"} 2\nlat_sum 1\nlat_count 2\n';

  it('sends counters raw and as a rate named without _total, with its window; histograms by parts', () => {
    const b = new SeriesBuilder(60_000, 1000);
    const first = b.build(parseExposition(text, 'text'), 1000);
    expect(first.series.map((s) => `${s.name}:${s.kind}`)).toEqual(['http_requests_total:COUNTER', 'cm_q:GAUGE', 'lat_bucket:UNTYPED', 'lat_sum:UNTYPED', 'lat_count:UNTYPED']);
    const second = b.build(parseExposition(text.replace('} 10', '} 30'), 'text'), 3000);
    expect(second.series.find((s) => s.kind === 'RATE')).toMatchObject({ name: 'http_requests', labels: { path: '/a' }, value: 10, windowMs: 60_000 });
  });

  it('caps the series and says how many were dropped', () => {
    const many = Array.from({ length: 10 }, (_, i) => `cm_s{i="${i}"} ${i}`).join('\n') + '\n';
    const r = new SeriesBuilder(60_000, 4).build(parseExposition(many, 'text'), 0);
    expect(r.series).toHaveLength(4);
    expect(r.dropped).toBe(6);
  });
});

describe('sidecar configuration', () => {
  const base = ['--aggregator', '127.0.0.1:9443', '--pod-name', 'p', '--pod-namespace', 'ns'];
  it('reads identity from RELAY_* env (the downward API) and defaults the timeout below the interval', () => {
    const c = loadSidecarConfig(['--aggregator', 'a:1'], { RELAY_POD_NAME: 'web-1', RELAY_POD_NAMESPACE: 'shop', RELAY_POD_UID: 'u1', RELAY_INTERVAL: '1s' });
    expect(c.pod).toEqual({ name: 'web-1', namespace: 'shop', uid: 'u1' });
    expect(c.timeoutMs).toBe(800);
    expect(c.metrics).toEqual(['cm_*']);
  });
  it.each([
    [['--interval', '1s', '--timeout', '2s'], '--timeout (2000ms) must be below --interval (1000ms)'],
    [['--target', 'ftp://x/metrics'], 'must be http or https'],
    [['--insecure', '--token-file', '/t'], '--insecure cannot be combined with --ca-file/--ca-pem/--token-file'],
    [['--pod-labels', 'novalue'], '--pod-labels: "novalue" is not k=v'],
  ])('rejects %j', (extra, message) => {
    expect(() => loadSidecarConfig([...base, ...extra], {})).toThrow(message);
  });
  it('requires the pod identity', () => {
    expect(() => loadSidecarConfig(['--aggregator', 'a:1'], {})).toThrow('--pod-name is required (set it from the downward API)');
  });
});

describe('skipping unselected families', () => {
  it('still fails a scrape whose skipped lines are not metrics at all', () => {
    expect(() => parseExposition('this is { not a metrics page\n', 'text', () => false)).toThrow('line 1: invalid value "is" for this');
    expect(() => parseExposition('other{a="b" 1\n', 'text', () => false)).toThrow('line 1: unterminated label set of other');
    expect(parseExposition('other{a="}"} 1\ncm_x 2\n', 'text', (n) => n.startsWith('cm_'))).toHaveLength(1);
  });
});
