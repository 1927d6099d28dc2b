import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatFromContentType, parseExposition, parsePage, ParseError, type Family, type Format } from '../../../../sidecar/src/parse/index.js';

const CORPORA = fileURLToPath(new URL('../../../fixtures/corpora/', import.meta.url));

/** The error a parse throws (fails the test if it does not throw a ParseError). */
function parseError(body: string, format: Format, select?: (name: string) => boolean): ParseError {
  try {
    parseExposition(body, format, select);
  } catch (err) {
    expect(err).toBeInstanceOf(ParseError);
    return err as ParseError;
  }
  throw new Error('expected a ParseError');
}

/** As the sidecar parses a scraped body: families and warnings. */
function page(body: string | Buffer, format: Format, select?: (name: string) => boolean) {
  return parsePage(typeof body === 'string' ? Buffer.from(body) : body, format, select);
}

/** Families as "name type: sample{labels}=value@ts ..." lines, for compact expectations. */
function summary(families: Family[]): string[] {
  return families.map((f) => `${f.name} ${f.type}: ${f.samples.map((s) => `${s.name}${Object.keys(s.labels).length ? JSON.stringify(s.labels) : ''}=${s.value}${s.timestampMs !== undefined ? `@${s.timestampMs}` : ''}`).join(' ')}`);
}

describe('errors', () => {
  it('name the 1-based line, in the message and as a field', () => {
    const err = parseError('# HELP a x\na 1\nb{c="d"} 2\nb{c="d" 3\n', 'text');
    expect(err.line).toBe(4);
    expect(err.message).toMatch(/^line 4: /);
    expect(err.name).toBe('ParseError');
  });

  it('count lines of OpenMetrics warnings found when a group ends at the offending sample; the samples are kept', () => {
    const { families, warnings } = page('# TYPE a histogram\na_bucket{le="1"} 2\na_bucket{le="+Inf"} 1\n# EOF\n', 'openmetrics');
    expect(warnings).toEqual([{ reason: 'invalid_histogram', line: 3, message: 'bucket counts must not decrease', count: 1 }]);
    expect(summary(families)).toEqual(['a histogram: a_bucket{"le":"1.0"}=2 a_bucket{"le":"+Inf"}=1']);
  });

  it('put a missing # EOF on the line after the last', () => {
    expect(parseError('a 1\n', 'openmetrics').message).toBe('line 2: missing # EOF at the end');
  });

  it('never return half a result: a bad last line fails the whole parse', () => {
    expect(() => parseExposition('a 1\nb 2\nc x\n', 'text')).toThrow('line 3: invalid value "x" for c');
  });
});

describe('select() and skipping', () => {
  const body = ['# TYPE node_x counter', 'node_x{a="1"} 1', 'node_x{a="2" 2', 'node_x{a="\\t"} 3', '# TYPE cm_y gauge', 'cm_y{a="1"} 4', ''].join('\n');

  it('is asked once per family, by its family name (text: the declared counter name; OpenMetrics: without _total)', () => {
    const asked: string[] = [];
    parseExposition('# TYPE a_total counter\na_total 1\na_total{x="y"} 2\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', 'text', (n) => (asked.push(n), true));
    expect(asked).toEqual(['a_total', 'h']);
    asked.length = 0;
    parseExposition('# TYPE a counter\na_total 1\na_created 2\nb_total 3\n# EOF\n', 'openmetrics', (n) => (asked.push(n), true));
    expect(asked).toEqual(['a', 'b_total']);
  });

  it('keeps selected families only', () => {
    expect(summary(parseExposition(body.replace('node_x{a="2" 2', 'node_x{a="2"} 2'), 'text', (n) => n.startsWith('cm_')))).toEqual(['cm_y gauge: cm_y{"a":"1"}=4']);
  });

  it('reads only the metric name of later lines of an unselected family: their errors are not reported', () => {
    // Lines 3 and 4 (an unterminated label set, an invalid escape) belong to node_x, which is not selected.
    expect(summary(parseExposition(body, 'text', (n) => n.startsWith('cm_')))).toEqual(['cm_y gauge: cm_y{"a":"1"}=4']);
  });

  it('checks the first sample line of an unselected family for shape, so a page that is not metrics fails', () => {
    expect(parseError('<html><body>oops</body></html>\n', 'text', () => false).message).toBe('line 1: invalid metric name at "<html><body>oops</bo"');
    expect(parseError('node_x{a="2" 2\n', 'text', () => false).message).toBe('line 1: unterminated label set of node_x');
    expect(parseError('node_x{a="}"} two\n', 'text', () => false).message).toBe('line 1: invalid value "two" for node_x');
  });

  it('never hides errors of a selected family, even between lines of unselected ones', () => {
    expect(parseError(body, 'text', (n) => n.startsWith('node_')).message).toBe('line 3: invalid label name at "2"');
    const mixed = 'node_a 1\ncm_b{x="1"} 2\nnode_a 3\ncm_b{x="1" 4\n';
    expect(parseError(mixed, 'text', (n) => n.startsWith('cm_')).message).toBe('line 4: invalid label name at "4"');
  });

  it('gives the selected families exactly as a full parse does (every should-parse conformance case)', () => {
    const select = (name: string) => name.length % 2 === 0;
    for (const [corpus, format] of [['openmetrics', 'openmetrics'], ['prometheus-text', 'text']] as const) {
      for (const name of readdirSync(CORPORA + corpus)) {
        const meta = JSON.parse(readFileSync(`${CORPORA}${corpus}/${name}/test.json`, 'utf8')) as { shouldParse: boolean };
        if (!meta.shouldParse) continue;
        const body = readFileSync(`${CORPORA}${corpus}/${name}/metrics`, 'utf8');
        expect(parseExposition(body, format, select), name).toEqual(parseExposition(body, format).filter((f) => select(f.name)));
      }
    }
  });

  it('ignores defects of unselected families (metadata, malformed samples) but still checks line structure', () => {
    const cm = (n: string) => n.startsWith('cm_');
    expect(page('# TYPE node_x counter\n# TYPE node_x gauge\n# TYPE node_y countr\nnode_y{ 1\ncm_a 1\n', 'text', cm)).toEqual({ families: [{ name: 'cm_a', type: 'untyped', samples: [{ name: 'cm_a', labels: {}, value: 1 }] }], warnings: [], cut: new Map() });
    expect(parseError('# TYPE cm_x countr\n', 'text', cm).message).toBe('line 1: unknown metric type "countr"');
    expect(parseError('node_x 1\n\n# EOF\n', 'openmetrics', () => false).message).toBe('line 2: blank lines are not allowed in OpenMetrics');
  });

  it('takes the windows_exporter page that repeats a HELP line far apart (field report); warns only for a selected family', () => {
    const lines = ['# HELP windows_mssql_locks_deadlocks Deadlocks.', '# TYPE windows_mssql_locks_deadlocks counter'];
    for (let i = 0; i < 100; i++) lines.push(`windows_mssql_locks_deadlocks{mssql_instance="i${i}"} ${i}`);
    lines.push('# HELP windows_mssql_locks_deadlocks Deadlocks.', '# HELP cm_queue Queue.', '# TYPE cm_queue gauge', 'cm_queue 3', '');
    const text = lines.join('\n');
    expect(page(text, 'text', (n) => n.startsWith('cm_'))).toEqual({ families: [{ name: 'cm_queue', type: 'gauge', help: 'Queue.', samples: [{ name: 'cm_queue', labels: {}, value: 3 }] }], warnings: [], cut: new Map() });
    const all = page(text, 'text');
    expect(all.families.map((f) => [f.name, f.samples.length, f.help])).toEqual([['windows_mssql_locks_deadlocks', 100, 'Deadlocks.'], ['cm_queue', 1, 'Queue.']]);
    expect(all.warnings).toEqual([{ reason: 'repeated_metadata', line: 103, message: 'second HELP line for metric name "windows_mssql_locks_deadlocks"', count: 1 }]);
  });
});

describe('families', () => {
  it('text 0.0.4: counters keep their declared name; histograms and summaries gather their suffixes', () => {
    const text = [
      '# HELP http_requests_total Requests.',
      '# TYPE http_requests_total counter',
      'http_requests_total{path="/a"} 10',
      '# TYPE lat histogram',
      'lat_bucket{le="0.5"} 1',
      'lat_bucket{le="+Inf"} 2',
      'lat_sum 0.7',
      'lat_count 2',
      '# TYPE rpc summary',
      'rpc{quantile="0.9"} 0.2',
      'rpc_sum 3',
      'rpc_count 9',
      'loose 1',
      '',
    ].join('\n');
    const families = parseExposition(text, 'text');
    expect(summary(families)).toEqual([
      'http_requests_total counter: http_requests_total{"path":"/a"}=10',
      'lat histogram: lat_bucket{"le":"0.5"}=1 lat_bucket{"le":"+Inf"}=2 lat_sum=0.7 lat_count=2',
      'rpc summary: rpc{"quantile":"0.9"}=0.2 rpc_sum=3 rpc_count=9',
      'loose untyped: loose=1',
    ]);
    expect(families[0]!.help).toBe('Requests.');
  });

  it('text 0.0.4: interleaved lines of a family join it, as in expfmt', () => {
    expect(summary(parseExposition('# TYPE s summary\ns_sum 1\nother 2\ns_count 3\n', 'text'))).toEqual(['s summary: s_sum=1 s_count=3', 'other untyped: other=2']);
  });

  it('text 0.0.4: a family of the exact name wins over a histogram suffix, as in expfmt', () => {
    expect(summary(parseExposition('# TYPE h_sum gauge\nh_sum 5\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 2\n', 'text'))).toEqual([
      'h_sum gauge: h_sum=5 h_sum=2',
      'h histogram: h_bucket{"le":"+Inf"}=1',
    ]);
  });

  it('OpenMetrics: families are named without the suffixes of their type', () => {
    const om = [
      '# TYPE req counter',
      'req_total 1',
      'req_created 1700000000',
      '# TYPE g gaugehistogram',
      'g_bucket{le="+Inf"} 3',
      'g_gcount 3',
      'g_gsum 2',
      '# TYPE build info',
      'build_info{version="1.2"} 1',
      '# TYPE st stateset',
      'st{st="a"} 1',
      'st{st="b"} 0',
      'plain_total 4',
      '# EOF',
      '',
    ].join('\n');
    expect(summary(parseExposition(om, 'openmetrics'))).toEqual([
      'req counter: req_total=1 req_created=1700000000',
      'g gaugehistogram: g_bucket{"le":"+Inf"}=3 g_gcount=3 g_gsum=2',
      'build info: build_info{"version":"1.2"}=1',
      'st stateset: st{"st":"a"}=1 st{"st":"b"}=0',
      'plain_total unknown: plain_total=4',
    ]);
    const withUnit = parseExposition('# TYPE req_seconds counter\n# UNIT req_seconds seconds\nreq_seconds_total 1\n# EOF\n', 'openmetrics');
    expect(withUnit[0]).toMatchObject({ name: 'req_seconds', unit: 'seconds' });
  });

  it('OpenMetrics: a family that comes back after another is merged, with a warning', () => {
    const { families, warnings } = page('# TYPE a counter\na_total 1\nb 1\na_total 2\n# EOF\n', 'openmetrics');
    expect(summary(families)).toEqual(['a counter: a_total=1 a_total=2', 'b unknown: b=1']);
    expect(warnings).toEqual([{ reason: 'family_not_contiguous', line: 4, message: 'a_total belongs to the counter a, whose lines must be contiguous', count: 1 }]);
  });

  it('text: repeated TYPE lines and TYPE after samples are warnings; the first TYPE decides the family type', () => {
    const { families, warnings } = page('a_total 1\n# TYPE a_total counter\n# TYPE a_total gauge\na_total 2\n', 'text');
    expect(summary(families)).toEqual(['a_total counter: a_total=1 a_total=2']);
    expect(warnings).toEqual([
      { reason: 'metadata_after_samples', line: 2, message: 'TYPE line for metric name "a_total" after its samples', count: 1 },
      { reason: 'repeated_metadata', line: 3, message: 'second TYPE line for metric name "a_total"', count: 1 },
    ]);
  });

  it('writes le and quantile values as Prometheus does, after a histogram or summary TYPE line', () => {
    const text = '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="1e3"} 1\nh_bucket{le="0.00001"} 1\nh_bucket{le="2500000"} 1\nh_bucket{le="+inf"} 1\n# TYPE s summary\ns{quantile="0.50"} 1\n# TYPE g gauge\ng{le="1"} 1\n';
    expect(summary(parseExposition(text, 'text'))).toEqual([
      'h histogram: h_bucket{"le":"1.0"}=1 h_bucket{"le":"1000.0"}=1 h_bucket{"le":"1e-05"}=1 h_bucket{"le":"2.5e+06"}=1 h_bucket{"le":"+Inf"}=1',
      's summary: s{"quantile":"0.5"}=1',
      'g gauge: g{"le":"1"}=1',
    ]);
  });

  it('OpenMetrics: a histogram with negative buckets and a _sum is a warning saying it must not have a _sum', () => {
    const om = '# TYPE h histogram\nh_bucket{le="-1"} 1\nh_bucket{le="+Inf"} 2\nh_count 2\nh_sum -3\n# EOF\n';
    expect(page(om, 'openmetrics').warnings).toEqual([{ reason: 'invalid_histogram', line: 5, message: 'histogram h has negative buckets and must not have a _sum', count: 1 }]);
  });

  it('drops families that have metadata but no samples', () => {
    expect(parseExposition('# HELP a x\n# TYPE a gauge\nb 1\n', 'text').map((f) => f.name)).toEqual(['b']);
  });
});

describe('values and timestamps', () => {
  it('reads floats, NaN and infinities (text also takes Go spellings such as inf and Infinity)', () => {
    const values = parseExposition('a 1.5e3\nb -0.25\nc NaN\nd +Inf\ne -Inf\nf Inf\ng inf\nh -Infinity\ni 08\nj .5\nk 12345678901234567890\n', 'text').map((f) => f.samples[0]!.value);
    expect(values).toEqual([1500, -0.25, NaN, Infinity, -Infinity, Infinity, Infinity, -Infinity, 8, 0.5, 12345678901234567000]);
  });

  it('parses decimals exactly as Number() does', () => {
    const literals = ['0.1', '123.456', '7003.25', '1.7560473e+06', '4.9351e-05', '7.424100000000001e-05', '1e-300', '2.5e22', '0.30000000000000004', '9007199254740993'];
    const parsed = parseExposition(literals.map((v, i) => `m${i} ${v}`).join('\n'), 'text').map((f) => f.samples[0]!.value);
    expect(parsed).toEqual(literals.map(Number));
  });

  it.each(['0x1p-3', '1_000', '0b1', '1e', '1e999', '--1', '+NaN', 'one'])('rejects the value %s', (v) => {
    expect(parseError(`a ${v}\n`, 'text').message).toContain('invalid value');
  });

  it('text: timestamps are integer milliseconds; a float timestamp is an error', () => {
    expect(parseExposition('a 1 1700000000123\nb 2 -5\n', 'text').map((f) => f.samples[0]!.timestampMs)).toEqual([1700000000123, -5]);
    expect(parseError('a 1 1.5\n', 'text').message).toBe('line 1: expected integer as timestamp, got "1.5"');
    expect(parseError('a 1 2 3\n', 'text').message).toBe('line 1: spurious string after timestamp: "3"');
  });

  it('OpenMetrics: timestamps are seconds, converted to whole milliseconds (truncated, as Prometheus does)', () => {
    const om = '# TYPE a gauge\na{x="1"} 1 1700000000.123\na{x="2"} 1 1.5e3\na{x="3"} 1 1.0009\na{x="4"} 1 -0.0004\n# EOF\n';
    expect(parseExposition(om, 'openmetrics')[0]!.samples.map((s) => s.timestampMs)).toEqual([1700000000123, 1500000, 1000, 0]);
    expect(parseError('a 1 NaN\n# EOF\n', 'openmetrics').message).toBe('line 1: invalid timestamp "NaN"');
  });
});

describe('escapes', () => {
  it('unescapes \\\\, \\" and \\n in label values, and keeps a } or # inside quotes', () => {
    const [f] = parseExposition('a{v="x\\\\y\\"z\\nw",w="}#{"} 1\n', 'text');
    expect(f!.samples[0]!.labels).toEqual({ v: 'x\\y"z\nw', w: '}#{' });
  });

  it('keeps any other escape in a label value as it is, in both formats (as Prometheus does)', () => {
    expect(parseExposition('a{v="\\t"} 1\n', 'text')[0]!.samples[0]!.labels).toEqual({ v: '\\t' });
    expect(parseExposition('a{v="\\t"} 1\n# EOF\n', 'openmetrics')[0]!.samples[0]!.labels).toEqual({ v: '\\t' });
  });

  it('unescapes HELP text, keeping unknown escapes', () => {
    expect(parseExposition('# HELP a one\\ntwo \\\\ \\"q\\" \\x\na 1\n', 'text')[0]!.help).toBe('one\ntwo \\ "q" \\x');
  });

  it('keeps a label named __proto__ as an own label', () => {
    const labels = parseExposition('a{__proto__="x"} 1\n', 'text')[0]!.samples[0]!.labels;
    expect(Object.keys(labels)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(labels, '__proto__')?.value).toBe('x');
  });

  it('rejects duplicate and reserved label names', () => {
    expect(parseError('a{x="1",y="2",x="3"} 1\n', 'text').message).toBe('line 1: duplicate label name x');
    expect(parseError('a{__name__="b"} 1\n', 'text').message).toBe('line 1: label name "__name__" is reserved');
  });
});

describe('text 0.0.4 leniency', () => {
  it('takes a body without a trailing newline', () => {
    expect(summary(parseExposition('a 1\nb{x="y"} 2', 'text'))).toEqual(['a untyped: a=1', 'b untyped: b{"x":"y"}=2']);
  });

  it('takes blanks around label tokens, a trailing comma, and a value right after }', () => {
    expect(summary(parseExposition('a { x = "1" , y="2", }3\n', 'text'))).toEqual(['a untyped: a{"x":"1","y":"2"}=3']);
  });

  it('takes labels with nothing between them, as Prometheus does', () => {
    expect(summary(parseExposition('a{x="1"y="2"} 3\n', 'text'))).toEqual(['a untyped: a{"x":"1","y":"2"}=3']);
    expect(parseError('a{x="1"="2"} 3\n', 'text').message).toBe('line 1: invalid label name at "=\\"2\\"} 3"');
  });

  it('takes quoted UTF-8 metric and label names', () => {
    const [f] = parseExposition('# TYPE "my.metric" gauge\n{"my.metric","label.name"="v"} 1\n', 'text');
    expect(f).toMatchObject({ name: 'my.metric', type: 'gauge', samples: [{ name: 'my.metric', labels: { 'label.name': 'v' }, value: 1 }] });
  });

  it('takes a quoted label name only in quotes, even right after a line that had it', () => {
    expect(parseError('{"m","a.b"="1"} 1\nm{a.b="2"} 2\n', 'text').message).toBe(`line 2: expected '=' after label name a`);
  });

  it('rejects CRLF line ends, saying so', () => {
    expect(parseError('a 1\r\nb 2\r\n', 'text').message).toBe('line 1: invalid value "1\\r" for a (lines must end with \\n, not \\r\\n)');
  });
});

describe('OpenMetrics leniency of the Prometheus server', () => {
  it('takes a trailing comma and quoted names in a label set', () => {
    expect(summary(parseExposition('a{x="1",} 1\n{"b.c","d.e"="2"} 2\n# EOF\n', 'openmetrics'))).toEqual(['a unknown: a{"x":"1"}=1', 'b.c unknown: b.c{"d.e":"2"}=2']);
    expect(parseError('a{x="1",,} 1\n# EOF\n', 'openmetrics').message).toBe('line 1: invalid label name at ",} 1"');
  });

  it('takes a counter sample without _total and a negative counter, with warnings', () => {
    const { families, warnings } = page('# TYPE a counter\na 1\na_total -1\n# EOF\n', 'openmetrics');
    expect(summary(families)).toEqual(['a counter: a=1 a_total=-1']);
    expect(warnings.map((w) => [w.reason, w.line, w.message])).toEqual([['invalid_sample', 2, 'a counter sample needs a suffix: _total, _created']]);
    expect(warnings[0]!.count).toBe(2);
  });
});

describe('OpenMetrics exemplars', () => {
  it('are validated and dropped', () => {
    const [f] = parseExposition('# TYPE a counter\na_total 1 # {trace_id="abc"} 0.5 1700000000.5\n# EOF\n', 'openmetrics');
    expect(f!.samples).toEqual([{ name: 'a_total', labels: {}, value: 1 }]);
    expect(parseError('# TYPE a counter\na_total 1 # {trace_id="abc"} x\n# EOF\n', 'openmetrics').message).toBe('line 2: invalid exemplar value "x"');
    const onGauge = page('# TYPE a gauge\na 1 # {trace_id="abc"} 1\n# EOF\n', 'openmetrics');
    expect(onGauge).toEqual({ families: [{ name: 'a', type: 'gauge', samples: [{ name: 'a', labels: {}, value: 1 }] }], warnings: [{ reason: 'invalid_exemplar', line: 2, message: 'exemplars are not allowed on a', count: 1 }], cut: new Map() });
  });
});

describe('formatFromContentType', () => {
  it.each([
    ['application/openmetrics-text; version=1.0.0; charset=utf-8', 'openmetrics'],
    ['Application/OpenMetrics-Text', 'openmetrics'],
    ['text/plain; version=0.0.4; charset=utf-8', 'text'],
    ['', 'text'],
    [undefined, 'text'],
  ])('%j is %s', (contentType, format) => expect(formatFromContentType(contentType)).toBe(format));
});

describe('invalid UTF-8', () => {
  const latin1 = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

  it('fails a sample line of a selected family, naming its line', () => {
    expect(page(latin1('a{x="é"} 1\n'), 'text').families[0]!.samples[0]!.labels).toEqual({ x: 'é' });
    expect(() => page(latin1('a 1\nb 2\nc{x="', [0xc3, 0x28], '"} 3\n'), 'text')).toThrow('line 3: invalid UTF-8');
  });

  it('passes in comments and in unselected families, as in Prometheus comments', () => {
    const body = latin1('# caf', [0xe9], '\nnode_x{x="', [0xe9], '"} 1\ncm_a 1\n');
    expect(summary(page(body, 'text', (n) => n.startsWith('cm_')).families)).toEqual(['cm_a untyped: cm_a=1']);
  });

  it('finds the line of an invalid byte at the end of a large body in linear time', () => {
    const body = latin1('a 1\n'.repeat(500_000), 'a{x="', [0xff], '"} 1\n');
    expect(() => page(body, 'text')).toThrow('line 500001: invalid UTF-8');
  });
});

describe('damaged input', () => {
  it('fails only with ParseError, with a line number', () => {
    // Conformance inputs with random edits (fixed seed): whatever the parser makes of them, it never crashes.
    const inputs = ['openmetrics', 'prometheus-text'].flatMap((corpus) => readdirSync(CORPORA + corpus).map((name) => readFileSync(`${CORPORA}${corpus}/${name}/metrics`, 'latin1')));
    const pieces = ['{', '}', '"', '\\', ',', '=', ' ', '\t', '\n', '#', 'a', '_', '1', '.', 'e', '-', '+Inf', 'NaN', ' # {', '\r', '\u0000', 'é'];
    let seed = 42;
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    for (let k = 0; k < 3000; k++) {
      let body = inputs[random(inputs.length)]!;
      const at = random(body.length + 1);
      body = random(2) === 0 ? body.slice(0, at) + pieces[random(pieces.length)]! + body.slice(at) : body.slice(0, at) + body.slice(at + 1 + random(4));
      for (const format of ['text', 'openmetrics'] as const) {
        try {
          parseExposition(body, format, random(2) === 0 ? undefined : (name) => name.length % 2 === 0);
        } catch (err) {
          if (!(err instanceof ParseError) || !(err.line >= 1)) throw new Error(`${format} ${JSON.stringify(body)}: ${String(err)}`);
        }
      }
    }
  });
});
