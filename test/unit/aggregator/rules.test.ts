import { describe, expect, it } from 'vitest';
import { compileRules } from '../../../aggregator/src/rules.js';

describe('rules file', () => {
  it('rejects bad rules files naming every problem', () => {
    expect(() => compileRules('{"metrics":[{"name":"a","aggregation":"median","oops":1},{"staleAfter":"soon"}]}', 'r.json')).toThrow(
      'r.json: metrics[0]: unknown key "oops"; r.json: metrics[0]: aggregation must be sum, avg, max or min, not "median"; r.json: metrics[1]: "name" (a metric name or glob) is required',
    );
  });
});

