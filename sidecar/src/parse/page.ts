// The parser's entry points: a scraped body (bytes, any format) or a string, and the format a Content-Type names.
import { Parser } from './parser.js';
import type { Family, Format, ParsedPage, SampleBudget } from './types.js';
import { invalidUtf8Lines } from './utf8.js';

/**
 * Decodes and parses a scraped body (see parseExposition). Invalid UTF-8 fails the parse only on a line the
 * parser keeps (a sample or HELP line of a selected family), as the Prometheus server refuses it only in label
 * values and HELP text: elsewhere (comments, unselected families) it is decoded as U+FFFD and not looked at.
 */
export function parsePage(body: Uint8Array, format: Format, select?: (familyName: string) => boolean, budget?: SampleBudget): ParsedPage {
  let text: string;
  let invalidLines: Set<number> | undefined;
  try {
    text = UTF8.decode(body);
  } catch {
    text = LOSSY_UTF8.decode(body);
    invalidLines = invalidUtf8Lines(body);
  }
  const parser = new Parser(text, format === 'openmetrics', select, invalidLines, budget);
  return { families: parser.run(), warnings: parser.warnings, cut: parser.cut };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const LOSSY_UTF8 = new TextDecoder('utf-8');

/** The format of a Content-Type value: application/openmetrics-text is OpenMetrics, anything else text 0.0.4. */
export function formatFromContentType(contentType: string | undefined): Format {
  return contentType?.trimStart().toLowerCase().startsWith('application/openmetrics-text') ? 'openmetrics' : 'text';
}

/**
 * Parses a whole exposition and returns its families that have samples, in order of first appearance. Throws
 * ParseError with the 1-based line of the first malformed line; never returns half a result. Strings in the
 * result may be slices of body (V8 then keeps body in memory while they live).
 *
 * `select(familyName)` is asked once per family (text: the declared name, e.g. `http_requests_total`;
 * OpenMetrics counters: the name without `_total`). Every line of a selected family gets every check. Of an
 * unselected family, only the first sample line is checked, and only for shape (a label set closed outside
 * quotes, then a valid value), so that a body that is not an exposition at all still fails; its other lines
 * are skipped once their metric name is known, and OpenMetrics family rules are not checked for it. Metadata
 * lines and line structure (blank lines, `# EOF`) are checked for all families.
 *
 * Text 0.0.4 is read as prometheus/common expfmt reads it (with UTF-8 names: `{"my.metric","a.b"="c"}`), and as
 * leniently as the Prometheus server where the two differ: the last newline may be missing; labels may be
 * separated by blanks alone; lines of a family may be interleaved with other families' (they are merged). CRLF
 * line ends are an error in both formats. OpenMetrics is read strictly (the OpenMetrics 1.0 conformance suite),
 * except that a label set repeated apart within a counter, gauge, info or unknown family (a duplicate series)
 * is not detected; exemplars are validated and dropped.
 */
export function parseExposition(body: string, format: Format, select?: (familyName: string) => boolean): Family[] {
  return new Parser(body, format === 'openmetrics', select, undefined).run();
}
