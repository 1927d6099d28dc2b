import { describe, expect, it } from 'vitest';
import { Discovery, PLACEHOLDER_METRIC } from '../../../../aggregator/src/api/discovery.js';
import { setup } from '../../../helpers/held-values.js';

describe('discovery', () => {
  it('lists only names with a fresh series, and a placeholder when nothing is fresh', () => {
    const { clock, provider, report } = setup();
    const discovery = new Discovery(provider, clock.now);
    const names = (body: string) => (JSON.parse(body) as { resources: { name: string }[] }).resources.map((r) => r.name);
    expect(names(discovery.customResourceList('v1beta2'))).toContain(`pods/${PLACEHOLDER_METRIC}`);
    report('p1', { cm_a: 1, Cm_B: 2 });
    expect(discovery.freshNames()).toEqual([]); // the list is recomputed at most once a second
    clock.advance(1000);
    report('p1', { cm_a: 1, Cm_B: 2 });
    expect(discovery.freshNames()).toEqual(['Cm_B', 'cm_a']);
    expect(names(discovery.externalResourceList())).toEqual(['cm_b', 'cm_a']);
    const list = names(discovery.customResourceList('v1beta1'));
    expect(list).toHaveLength(16);
    expect(list).toContain('jobs.batch/cm_a');
    clock.advance(16_000);
    expect(names(discovery.customResourceList('v1beta1'))).toEqual(expect.arrayContaining([`pods/${PLACEHOLDER_METRIC}`]));
  });
});


describe('discovery over any MetricsProvider', () => {
  it('lists the names the provider gives, asking it at most once a second', () => {
    let now = 0;
    let asked = 0;
    const discovery = new Discovery({ metricNames: () => (asked++, ['cm_a', 'cm_b']) }, () => now);
    const names = (body: string) => (JSON.parse(body) as { resources: { name: string }[] }).resources.map((r) => r.name);
    expect(names(discovery.externalResourceList())).toEqual(['cm_a', 'cm_b']);
    expect(names(discovery.customResourceList('v1beta2')).filter((n) => n.startsWith('pods/'))).toEqual(['pods/cm_a', 'pods/cm_b']);
    expect(asked).toBe(1);
    now += 1000;
    discovery.freshNames();
    expect(asked).toBe(2);
  });
});
