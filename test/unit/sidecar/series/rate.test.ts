import { describe, expect, it } from 'vitest';
import { RateTracker } from '../../../../sidecar/src/series/rate.js';

describe('counter rates (RateTracker)', () => {
  it('has no rate from the first sample, then the increase per second', () => {
    const r = new RateTracker(60_000);
    expect(r.observe('a', 0, 100)).toBeUndefined();
    expect(r.observe('a', 2000, 120)).toBe(10);
    expect(r.observe('a', 4000, 160)).toBe(15); // (160 - 100) / 4s: the window still holds every sample
  });

  it('counts a reset as a restart from zero, like rate(): never negative', () => {
    const r = new RateTracker(60_000);
    r.observe('a', 0, 100);
    r.observe('a', 1000, 120);
    // 120 -> 5 is a reset: the counter went 0 -> 5, so the increase is 20 + 5 over 2s.
    expect(r.observe('a', 2000, 5)).toBe(12.5);
    expect(r.observe('a', 3000, 0)).toBeCloseTo(25 / 3); // a reset to exactly 0 adds nothing
    for (let t = 4000, v = 50; t < 20_000; t += 1000, v = v > 10 ? v - 30 : v + 40) expect(r.observe('a', t, v)).toBeGreaterThanOrEqual(0);
  });

  it('slides the window, keeping one sample at or before its start', () => {
    const r = new RateTracker(10_000);
    // 10/s for 30s, then 100/s.
    let v = 0;
    for (let t = 0; t <= 30_000; t += 1000) r.observe('a', t, (v = t / 100));
    expect(r.observe('a', 31_000, (v += 100))).toBeCloseTo((10 * 9 + 100) / 10); // 21s..31s
    for (let t = 32_000; t <= 41_000; t += 1000) r.observe('a', t, (v += 100));
    expect(r.observe('a', 42_000, (v += 100))).toBe(100); // the window now only holds the new pace
  });

  it('spans the window exactly when samples fall on its start', () => {
    const r = new RateTracker(5000);
    for (let t = 0; t <= 20_000; t += 1000) r.observe('a', t, t === 20_000 ? 1000 : 0);
    // Window 15s..20s: 0 at 15s, 1000 at 20s.
    expect(r.observe('a', 20_000, 1000)).toBe(200);
  });

  it('ignores a sample not newer than the last (same exposition timestamp)', () => {
    const r = new RateTracker(60_000);
    r.observe('a', 1000, 1);
    expect(r.observe('a', 3000, 5)).toBe(2);
    expect(r.observe('a', 3000, 500)).toBe(2);
    expect(r.observe('a', 2000, 500)).toBe(2);
  });

  it('gives NaN for a non-finite value without poisoning later rates', () => {
    const r = new RateTracker(60_000);
    r.observe('a', 0, 0);
    expect(r.observe('a', 1000, Number.NaN)).toBeNaN();
    expect(r.observe('a', 2000, Number.POSITIVE_INFINITY)).toBeNaN();
    expect(r.observe('a', 4000, 8)).toBe(2);
  });

  it('keeps series apart and forgets the ones that left', () => {
    const r = new RateTracker(60_000);
    r.observe('a', 0, 0);
    r.observe('b', 0, 0);
    expect(r.observe('a', 1000, 1)).toBe(1);
    expect(r.observe('b', 1000, 3)).toBe(3);
    r.retain(new Set(['b']));
    expect(r.size).toBe(1);
    expect(r.observe('a', 2000, 2)).toBeUndefined(); // starts afresh
  });

  it('keeps memory per series bounded by the window', () => {
    const r = new RateTracker(10_000);
    for (let t = 0; t < 1_000_000; t += 1000) r.observe('a', t, t);
    const track = (r as unknown as { tracks: Map<string, { times: number[] }> }).tracks.get('a')!;
    expect(track.times.length).toBeLessThan(200);
  });
});
