/**
 * Parses a downwardAPI volume file of labels: one `key="value"` line each, the value Go-quoted
 * (strconv.Quote: \", \\, \n, \t, \xNN, \uNNNN). Unparseable lines are skipped.
 */
export function parseLabelsFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const raw = line.slice(eq + 1).trim();
    if (!raw.startsWith('"') || !raw.endsWith('"') || raw.length < 2) continue;
    try {
      // Go's quoting is a superset-compatible subset of JSON for what labels can hold, except \x escapes.
      out[key] = JSON.parse(raw.replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1')) as string;
    } catch {
      continue;
    }
  }
  return out;
}
