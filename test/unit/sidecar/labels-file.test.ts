import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createLabelsFileSource, parseLabelsFile } from '../../../sidecar/src/labels-file.js';

describe('downwardAPI labels file', () => {
  it('reads key="value" lines as the kubelet writes them', () => {
    const file = 'app="web"\napp.kubernetes.io/name="shop"\npod-template-hash="7d4b9c8f6b"\n';
    expect(parseLabelsFile(file)).toEqual({ app: 'web', 'app.kubernetes.io/name': 'shop', 'pod-template-hash': '7d4b9c8f6b' });
  });

  it('undoes Go quoting: \\" \\\\ control escapes, \\x and octal bytes (UTF-8), \\u and \\U', () => {
    const file = [
      'q="a \\"quoted\\" \\\\ value"',
      'ctl="tab\\there\\nnext\\a\\b\\f\\r\\v"',
      'bytes="caf\\xc3\\xa9 and caf\\303\\251"',
      'u="\\u00e9\\U0001F600"',
      'raw="héllo 😀"',
      'empty=""',
    ].join('\n');
    expect(parseLabelsFile(file)).toEqual({ q: 'a "quoted" \\ value', ctl: 'tab\there\nnext\x07\b\f\r\v', bytes: 'café and café', u: 'é😀', raw: 'héllo 😀', empty: '' });
  });

  it('skips lines that are not key="value"', () => {
    expect(parseLabelsFile('good="1"\nbroken\n="novalue"\nunquoted=x\nbad="\\q"\nopen="x\n\n')).toEqual({ good: '1' });
  });

  it('re-reads the file, keeps the same object while unchanged, and keeps the last labels when unreadable', () => {
    let content: string | undefined = 'app="web"\n';
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const source = createLabelsFileSource('/labels', () => {
      if (content === undefined) throw new Error('ENOENT');
      return content;
    }, logger);
    const first = source();
    expect(first).toEqual({ app: 'web' });
    expect(source()).toBe(first);
    content = 'app="web"\ntier="front"\n';
    const second = source();
    expect(second).toEqual({ app: 'web', tier: 'front' });
    expect(second).not.toBe(first);
    content = undefined;
    expect(source()).toBe(second);
    expect(source()).toBe(second);
    expect(lines.filter((l) => l.includes('cannot read the pod labels file'))).toHaveLength(1);
  });
});
