// The parser's entry points: a scraped body (bytes, any format) or a string, and the format a Content-Type names.
import { Parser } from './parser.js';
import type { Family, Format, ParsedPage, SampleBudget } from './types.js';
import { invalidUtf8Lines } from './utf8.js';

/**
 * Decodes and parses a scraped body: its families that have samples, in order of first appearance, and the
 * format rules it broke that were let pass (warnings). Throws ParseError with the 1-based line of the first line
 * neither parser of the Prometheus server would take; never returns half a result. What is accepted, warned
 * about and refused is in docs/parser.md.
 *
 * `select(familyName)` is asked once per family (text: the declared name, e.g. `http_requests_total`;
 * OpenMetrics counters: the name without `_total`). Every line of a selected family gets every check. Of an
 * unselected family, only the first sample line is checked, and only for shape, so that a body that is not an
 * exposition at all still fails; its other lines are skipped once their metric name is known. `budget` bounds the
 * samples held (SampleBudget).
 *
 * Invalid UTF-8 fails the parse only on a line the parser keeps (a sample or HELP line of a selected family), as
 * the Prometheus server refuses it only in label values and HELP text: elsewhere it is decoded as U+FFFD.
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

/** parsePage's families for a string already decoded (tests and benchmarks). */
export function parseExposition(body: string, format: Format, select?: (familyName: string) => boolean): Family[] {
  return new Parser(body, format === 'openmetrics', select, undefined).run();
}
