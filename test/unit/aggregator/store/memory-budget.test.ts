import { describe, expect, it } from 'vitest';
import { containerMemoryLimit, defaultStoreBudget, FALLBACK_STORE_BYTES } from '../../../../aggregator/src/store/memory-budget.js';
import { loadAggregatorConfig } from '../../../../aggregator/src/config.js';

const files = (f: Record<string, string>) => (path: string) => f[path];

describe('default memory budget of the store', () => {
  it('is 35% of the cgroup v2 memory.max', () => {
    expect(defaultStoreBudget(files({ '/sys/fs/cgroup/memory.max': '536870912\n' }))).toEqual({ bytes: 187904819, source: '35% of the container memory limit 536870912 (/sys/fs/cgroup/memory.max)' });
  });

  it('falls back to cgroup v1 memory.limit_in_bytes', () => {
    expect(defaultStoreBudget(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '1073741824\n' })).bytes).toBe(375809638);
  });

  it.each([
    ['v2 "max"', { '/sys/fs/cgroup/memory.max': 'max\n' }],
    ['v1 unlimited', { '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n' }],
    ['no cgroup file', {}],
  ])('is the fixed default with %s', (_, f) => {
    expect(defaultStoreBudget(files(f))).toEqual({ bytes: FALLBACK_STORE_BYTES, source: 'no container memory limit found: the fixed default' });
  });

  it('--max-store-bytes overrides; the byte limits must be positive', () => {
    expect(loadAggregatorConfig(['--max-store-bytes', '1000'], {}).maxStoreBytes).toBe(1000);
    expect(loadAggregatorConfig([], {}).maxStoreBytes).toBeUndefined();
    expect(loadAggregatorConfig([], {})).toMatchObject({ maxLabelNameBytes: 128, maxLabelValueBytes: 2048, maxLabelsPerSeries: 32, maxClockSkewMs: 5000, maxResponseBytes: 16777216 });
    expect(() => loadAggregatorConfig(['--max-label-value-bytes', '0'], {})).toThrow('--max-label-value-bytes must be at least 1');
  });
});

describe('containerMemoryLimit', () => {
  it('reads the limit from cgroup v2, else v1; "max" and v1\'s huge value mean none', () => {
    const files = (m: Record<string, string>) => (p: string) => m[p];
    expect(containerMemoryLimit(files({ '/sys/fs/cgroup/memory.max': '536870912\n' }))).toEqual({ bytes: 536870912, path: '/sys/fs/cgroup/memory.max' });
    expect(containerMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '268435456' }))?.bytes).toBe(268435456);
    expect(containerMemoryLimit(files({ '/sys/fs/cgroup/memory.max': 'max' }))).toBeUndefined();
    expect(containerMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712' }))).toBeUndefined();
    expect(containerMemoryLimit(files({}))).toBeUndefined();
  });
});
