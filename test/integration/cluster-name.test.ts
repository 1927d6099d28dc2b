import { afterAll, describe, expect, it } from 'vitest';
import { startRelay, type RelayProcess } from '../helpers/processes.js';

// --cluster-name: a fleet's replicas tell which cluster they serve, on the status page and on every self-metric.

const started: RelayProcess[] = [];
async function aggregator(extra: string[]): Promise<RelayProcess> {
  const p = await startRelay(['aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', ...extra]);
  started.push(p);
  return p;
}
const get = async (p: RelayProcess, path: string) => (await fetch(`http://127.0.0.1:${p.ports['metrics']}${path}`)).text();

afterAll(async () => {
  for (const p of started) await p.stop();
});

describe('--cluster-name', () => {
  it('labels every self-metric cluster="<name>" and names the cluster on the status page', async () => {
    const agg = await aggregator(['--cluster-name', 'prod-eu-1']);
    const samples = (await get(agg, '/metrics')).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(samples.length).toBeGreaterThan(20);
    expect(samples.filter((l) => !l.includes('cluster="prod-eu-1"'))).toEqual([]);
    expect(samples).toContain('metrics_relay_aggregator_series{cluster="prod-eu-1"} 0');
    const page = await get(agg, '/');
    expect(page).toContain('<title>metrics-relay aggregator · prod-eu-1</title>');
    expect(page).toContain('<p>Cluster: <b>prod-eu-1</b></p>');
    expect(agg.lines.find((l) => l.includes('aggregator listening'))).toContain('"cluster":"prod-eu-1"');
  });

  it('without it: no cluster label, and the page says the cluster is not named', async () => {
    const agg = await aggregator([]);
    const metrics = await get(agg, '/metrics');
    expect(metrics).toContain('metrics_relay_aggregator_series 0');
    expect(metrics).not.toContain('cluster=');
    expect(await get(agg, '/')).toContain('<p>Cluster: not named (--cluster-name)</p>');
  });

  it('refuses a name that is not a label value, saying why', async () => {
    const err = await aggregator(['--cluster-name', 'prod/eu']).then(() => 'started', (e: Error) => e.message);
    expect(err).toContain('--cluster-name: "prod/eu" is not a valid label value');
  });
});
