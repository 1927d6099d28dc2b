import type { Logger } from 'pino';

/** A pod's labels. The same object is handed out until the labels change, so `!==` means "changed". */
export type PodLabels = Readonly<Record<string, string>>;

/**
 * Parses a downwardAPI volume file of labels: one `key="value"` line per label, the value quoted by Go's
 * strconv.Quote (the kubelet writes `fmt.Sprintf("%s=%q\n", k, v)`): `\"`, `\\`, `\a\b\f\n\r\t\v`, `\xNN` and
 * `\NNN` bytes (UTF-8 put back together), `\uNNNN`, `\UNNNNNNNN`. Lines that are not of that form are skipped.
 */
export function parseLabelsFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const value = unquoteGo(line.slice(eq + 1).trimEnd());
    if (value !== undefined) out[line.slice(0, eq)] = value;
  }
  return out;
}

const SIMPLE: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34, "'": 39 };

/** Go's strconv.Unquote for double-quoted strings; undefined when `q` is not one. */
function unquoteGo(q: string): string | undefined {
  if (q.length < 2 || q[0] !== '"' || q[q.length - 1] !== '"') return undefined;
  const bytes: number[] = [];
  const pushUtf8 = (cp: number) => bytes.push(...Buffer.from(String.fromCodePoint(cp), 'utf8'));
  for (let i = 1; i < q.length - 1; ) {
    const c = q[i]!;
    if (c === '"') return undefined;
    if (c !== '\\') {
      const cp = q.codePointAt(i)!;
      pushUtf8(cp);
      i += cp > 0xffff ? 2 : 1;
      continue;
    }
    const e = q[i + 1];
    if (e === undefined) return undefined;
    if (e in SIMPLE) {
      bytes.push(SIMPLE[e]!);
      i += 2;
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const len = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = q.slice(i + 2, i + 2 + len);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) return undefined;
      const n = parseInt(hex, 16);
      if (e === 'x') bytes.push(n);
      else if (n > 0x10ffff) return undefined;
      else pushUtf8(n);
      i += 2 + len;
    } else if (e >= '0' && e <= '7') {
      const oct = q.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct) || parseInt(oct, 8) > 255) return undefined;
      bytes.push(parseInt(oct, 8));
      i += 4;
    } else {
      return undefined;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * The pod's labels from a downwardAPI volume file, re-read on every call (the kubelet rewrites the file when the
 * labels change). Returns the previous object while nothing changed; when the file cannot be read it keeps the
 * last labels read and logs that once (until it can be read again).
 */
export function createLabelsFileSource(path: string, readFile: (path: string) => string, logger: Logger): () => PodLabels {
  let current: PodLabels = Object.freeze({});
  let lastText = '';
  let failing = false;
  return () => {
    let text: string;
    try {
      text = readFile(path);
    } catch (err) {
      if (!failing) logger.warn({ file: path, err: (err as Error).message }, 'cannot read the pod labels file; keeping the labels read before');
      failing = true;
      return current;
    }
    if (failing) logger.info({ file: path }, 'pod labels file readable again');
    failing = false;
    if (text !== lastText) {
      lastText = text;
      const next = parseLabelsFile(text);
      if (JSON.stringify(next) !== JSON.stringify(current)) {
        current = Object.freeze(next);
        logger.info({ labels: current }, 'pod labels read');
      }
    }
    return current;
  };
}
