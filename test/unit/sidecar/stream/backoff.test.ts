import { describe, expect, it } from 'vitest';
import { createBackoff } from '../../../../sidecar/src/stream/backoff.js';

describe('reconnect backoff', () => {
  it('doubles from the initial delay up to the cap, each delay within [ceiling/2, ceiling]', () => {
    const lows = createBackoff(100, 5000, () => 0);
    const highs = createBackoff(100, 5000, () => 0.999999);
    const ceilings = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000];
    for (const c of ceilings) {
      expect(lows.next()).toBe(c / 2);
      expect(highs.next()).toBe(c);
    }
  });

  it('stays within bounds with real randomness', () => {
    const b = createBackoff(100, 1000);
    for (let i = 0; i < 1000; i++) {
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(50);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });

  it('starts over after reset()', () => {
    const b = createBackoff(100, 5000, () => 0.999999);
    for (let i = 0; i < 10; i++) b.next();
    b.reset();
    expect(b.next()).toBe(100);
  });
});
