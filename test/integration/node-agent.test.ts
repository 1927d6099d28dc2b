import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRelay, eventually, type RelayProcess } from '../helpers/processes.js';
import { get } from '../helpers/http.js';
import { startExampleApp, type ExampleApp } from '../../examples/app.js';

// One node agent process and two aggregator processes; the pods come from a pods file (what the pod informer
// would list), each app on its own loopback address as each pod has its own IP.

const NS = 'node';
const aggs: RelayProcess[] = [];
const apps = new Map<string, ExampleApp>();
let agent: RelayProcess;
let podsFile: string;
const pods = new Map<string, Record<string, unknown>>();

function pod(name: string, ip: string, opts: { node?: string; labels?: Record<string, string>; annotations?: Record<string, string>; phase?: string } = {}): Record<string, unknown> {
  return {
    metadata: { namespace: NS, name, uid: `uid-${name}`, labels: opts.labels ?? { app: 'web' }, annotations: { 'metrics-relay.io/inject': 'true', 'metrics-relay.io/interval': '1s', ...opts.annotations } },
    spec: { nodeName: opts.node ?? 'node-a', containers: [{ name: 'app', ports: [{ containerPort: 8080 }] }] },
    status: { phase: opts.phase ?? 'Running', podIP: ip },
  };
}
/** Writes the pods file as `kubectl get pods -o json` would print the pods; the agent re-reads it every second. */
function writePods(): void {
  writeFileSync(`${podsFile}.tmp`, JSON.stringify({ apiVersion: 'v1', kind: 'PodList', items: [...pods.values()] }));
  // NOTE: renamed into place, so the agent never reads half a file.
  renameSync(`${podsFile}.tmp`, podsFile);
}
async function app(name: string, ip: string): Promise<ExampleApp> {
  const a = await startExampleApp({ host: ip, port: 8080 });
  apps.set(name, a);
  return a;
}
/** What replica i answers for one pod: the value, or 'status: message'. */
async function served(i: number, name: string, metric = 'cm_connection_count'): Promise<string> {
  const r = await get(`https://127.0.0.1:${aggs[i]!.ports['api']}/apis/custom.metrics.k8s.io/v1beta2/namespaces/${NS}/pods/${name}/${metric}`);
  return r.status === 200 ? (r.json.items[0].value as string) : `${r.status}: ${r.json?.message}`;
}
const onBoth = (name: string, want: (v: string) => boolean, timeoutMs = 10_000) =>
  eventually(async () => {
    const vs = [await served(0, name), await served(1, name)];
    return vs.every(want) ? vs : undefined;
  }, timeoutMs);
const agentMetric = async (line: string): Promise<number> => {
  const text = (await get(`http://127.0.0.1:${agent.ports['metrics']}/metrics`)).text;
  return Number(text.split('\n').find((l) => l.startsWith(`${line} `))?.slice(line.length + 1));
};

beforeAll(async () => {
  podsFile = join(mkdtempSync(join(tmpdir(), 'node-agent-')), 'pods.json');
  for (let i = 0; i < 2; i++) aggs.push(await startRelay(['aggregator', '--standalone', '--api-port', '0', '--ingest-port', '0', '--metrics-port', '0', '--log-level', 'warn']));
  (await app('web-1', '127.0.3.1')).setConnections(3);
  (await app('web-2', '127.0.3.2')).setConnections(4);
  pods.set('web-1', pod('web-1', '127.0.3.1'));
  pods.set('web-2', pod('web-2', '127.0.3.2'));
  pods.set('elsewhere', pod('elsewhere', '127.0.3.9', { node: 'node-b' }));
  writePods();
  agent = await startRelay(['node-agent', '--node-name', 'node-a', '--pods-file', podsFile, '--aggregator', aggs.map((a) => `127.0.0.1:${a.ports['ingest']}`).join(','), '--insecure', '--metrics-port', '0', '--bind-address', '127.0.0.1']);
});
afterAll(async () => {
  await agent?.stop();
  for (const a of apps.values()) await a.close();
  for (const a of aggs) await a.stop();
});

describe('node agent', () => {
  it("streams every opted-in pod of its node to both replicas, each under its own identity; other nodes' pods are left alone", async () => {
    await onBoth('web-1', (v) => v === '3');
    await onBoth('web-2', (v) => v === '4');
    expect(await served(0, 'elsewhere')).toMatch(/^404: /);
    expect(await agentMetric('metrics_relay_node_agent_pods{state="scraping"}')).toBe(2);
    expect(await agentMetric('metrics_relay_node_agent_streams_up{replica="127.0.0.1:' + aggs[0]!.ports['ingest'] + '"}')).toBe(2);
  });

  it('a pod that hangs costs only its own values: the other pod stays fresh', async () => {
    apps.get('web-1')!.setFailMode('hang');
    apps.get('web-2')!.setConnections(6);
    await onBoth('web-2', (v) => v === '6', 5000);
    // web-1 goes stale (its breaker opens) while web-2 keeps its values, scrape after scrape.
    await onBoth('web-1', (v) => /^404: .*stale since.*the pod's node agent reports its scrape breaker open/.test(v), 20_000);
    apps.get('web-2')!.setConnections(7);
    await onBoth('web-2', (v) => v === '7', 3000);
    apps.get('web-1')!.setFailMode('ok');
    await onBoth('web-1', (v) => v === '3', 15_000);
  });

  it("an unreachable pod: the 404 says the node agent cannot reach its address, and why", async () => {
    pods.set('web-3', pod('web-3', '127.0.3.3'));
    writePods();
    const [answer] = await onBoth('web-3', (v) => /cannot reach/.test(v), 10_000);
    expect(answer).toMatch(/^404: the server could not find the metric cm_connection_count for pods in namespace node: .*the pod's node agent reports.*node agent cannot reach 127\.0\.3\.3:8080: connect ECONNREFUSED 127\.0\.3\.3:8080/);
    // The status page lists the pod with the same reason.
    const page = (await get(`http://127.0.0.1:${aggs[1]!.ports['metrics']}/`)).text;
    expect(page).toMatch(/<td>web-3<\/td>.*node agent cannot reach 127\.0\.3\.3:8080: connect ECONNREFUSED/);
    expect(await served(0, 'web-2')).toBe('7');
  });

  it('a pods file it cannot read is logged once and changes nothing: the pods read before are still scraped', async () => {
    writeFileSync(podsFile, '{"items": [');
    await eventually(() => (agent.lines.some((l) => l.includes('cannot read the pods file; keeping the pods read before')) ? true : undefined));
    apps.get('web-2')!.setConnections(8);
    await onBoth('web-2', (v) => v === '8');
    writePods();
  });

  it('a pod that leaves the node (deleted, or no longer Running) loses its values on every replica at once', async () => {
    apps.get('web-2')!.setConnections(7);
    await onBoth('web-2', (v) => v === '7');
    pods.delete('web-2');
    writePods();
    // The Goodbye deletes the pod's series: no waiting for staleness (15s).
    await onBoth('web-2', (v) => /^404: /.test(v) && !/stale/.test(v), 4000);
    pods.set('web-1', pod('web-1', '127.0.3.1', { phase: 'Succeeded' }));
    writePods();
    await onBoth('web-1', (v) => /^404: /.test(v) && !/stale/.test(v), 4000);
  });

  it('annotations it cannot scrape are refused with the reason, counted; a fix is picked up without a restart', async () => {
    (await app('web-4', '127.0.3.4')).setConnections(9);
    pods.set('web-4', pod('web-4', '127.0.3.4', { annotations: { 'metrics-relay.io/interval': '1abc' } }));
    writePods();
    await eventually(async () => ((await agentMetric('metrics_relay_node_agent_pods{state="refused"}')) === 1 ? true : undefined));
    const refusal = agent.lines.map((l) => JSON.parse(l) as { pod?: string; msg: string; err?: string }).find((l) => l.pod === 'web-4' && l.msg === 'pod opted in but cannot be scraped');
    expect(refusal?.err).toBe('annotation metrics-relay.io/interval: --interval: "1abc" is not a duration (e.g. 500ms, 5s, 1m)');
    pods.set('web-4', pod('web-4', '127.0.3.4', { labels: { app: 'web', v: '1' } }));
    writePods();
    await onBoth('web-4', (v) => v === '9');
    expect(await agentMetric('metrics_relay_node_agent_pods{state="refused"}')).toBe(0);
    // A label change reaches the replicas without a new stream: labelSelector queries see it.
    pods.set('web-4', pod('web-4', '127.0.3.4', { labels: { app: 'web', v: '2' } }));
    writePods();
    await eventually(async () => {
      const r = await get(`https://127.0.0.1:${aggs[0]!.ports['api']}/apis/custom.metrics.k8s.io/v1beta2/namespaces/${NS}/pods/*/cm_connection_count?labelSelector=v%3D2`);
      return r.json?.items?.length === 1 ? true : undefined;
    });
  });
});
