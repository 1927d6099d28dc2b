import { describe, expect, it } from 'vitest';
import { compileSelection } from '../../../../sidecar/src/series/select.js';
import { isValidPattern } from '../../../../common/src/sidecar-options.js';

describe('--metrics selection', () => {
  it('matches exact names and * / ? globs against family names', () => {
    const sel = compileSelection(['cm_*', 'queue_depth', 'up?']);
    expect(sel('cm_connection_count')).toBe(true);
    expect(sel('cm_')).toBe(true);
    expect(sel('queue_depth')).toBe(true);
    expect(sel('queue_depth_seconds')).toBe(false);
    expect(sel('up1')).toBe(true);
    expect(sel('up')).toBe(false);
    expect(sel('up12')).toBe(false);
    expect(sel('xcm_a')).toBe(false);
  });

  it('selects a counter by its text name in both formats (OpenMetrics names the family without _total)', () => {
    const sel = compileSelection(['http_requests_total']);
    expect(sel('http_requests_total')).toBe(true); // text 0.0.4 family
    expect(sel('http_requests')).toBe(true); // OpenMetrics family of the same counter
    expect(compileSelection(['http_*_total'])('http_requests')).toBe(true);
  });

  it('treats : and _ literally, and nothing else as a regex', () => {
    const sel = compileSelection(['job:rate_*']);
    expect(sel('job:rate_5m')).toBe(true);
    expect(sel('jobxrate_5m')).toBe(false);
  });

  it('accepts only metric-name characters and globs', () => {
    for (const ok of ['cm_*', 'a', ':x', '*', 'a?b', 'http_requests_total']) expect(isValidPattern(ok)).toBe(true);
    for (const bad of ['', 'a.b', 'a+', '9abc', 'a b', '(a)', 'a{b}']) expect(isValidPattern(bad)).toBe(false);
  });
});
