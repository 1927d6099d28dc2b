import { describe, expect, it } from 'vitest';
import { memoryAdmission } from '../../../../aggregator/src/ingest/admission.js';

describe('stream admission near the memory limit', () => {
  it('admits below 85% of the limit and refuses past it, saying how much is used', () => {
    let rss = 400 * 1048576;
    const check = memoryAdmission(512 * 1048576, () => rss);
    expect(check()).toBeUndefined();
    rss = 436 * 1048576;
    expect(check()).toBe('this aggregator replica is near its memory limit (resident 436 MiB of 512 MiB; new streams are refused past 85%): it keeps the streams it holds, and the other replicas still serve this pod');
    rss = 100 * 1048576;
    expect(check()).toBeUndefined();
  });

  it('admits everything without a container limit', () => {
    expect(memoryAdmission(undefined, () => 2 ** 40)()).toBeUndefined();
  });
});
