import type { PodSummary } from './store/memory-store.js';
import type { AggregatorMetrics } from './self-metrics.js';

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const mib = (bytes: number): string => (Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : 'unlimited');
/** Metric names of the pod's last snapshot refused at ingest, with why (as the 404 for them says). */
const refusals = (refused: ReadonlyMap<string, string>): string => [...refused].map(([name, why]) => `${name}: ${why}`).join('; ');

/** What the page shows of the store (MemoryStore is one). */
export interface HeldSummary {
  readonly seriesTotal: number;
  readonly podTotal: number;
  readonly bytesUsed: number;
  readonly bytesLimit: number;
  podSummaries(nowMs: number): Iterable<PodSummary>;
  namespaces(): Iterable<string>;
  metricNamesIn(namespace: string): Iterable<string>;
}

/**
 * The operator's page on the metrics port (`/`): what is held, which pods are fresh, streams and breakers.
 * Plain HTML with a meta refresh; no scripts, no build step.
 */
export async function renderStatusPage(store: HeldSummary, metrics: AggregatorMetrics, notReady: string | undefined, now = Date.now(), clusterName?: string): Promise<string> {
  const rows: string[] = [];
  const names = new Set<string>();
  for (const namespace of store.namespaces()) for (const name of store.metricNamesIn(namespace)) names.add(name);
  for (const { pod, fresh, newestMs: newest } of store.podSummaries(now)) {
    const state = pod.staleSinceMs !== undefined ? 'stale (scrape breaker open)' : fresh === pod.seriesCount && fresh > 0 ? 'fresh' : fresh > 0 ? 'partly stale' : 'stale';
    rows.push(`<tr class="${state.split(' ')[0]}"><td>${esc(pod.namespace)}</td><td>${esc(pod.name)}</td><td>${pod.seriesCount}</td><td>${fresh}</td><td>${newest ? `${((now - newest) / 1000).toFixed(1)}s` : '-'}</td><td>${state}</td><td>${esc(pod.lastError)}</td><td>${esc(refusals(pod.refused))}</td></tr>`);
  }
  const streams = (await metrics.streams.get()).values[0]?.value ?? 0;
  const refusedNearLimit = (await metrics.rejected.get()).values.find((v) => v.labels['reason'] === 'memory_limit')?.value ?? 0;
  const breakers = (await metrics.breakerState.get()).values.map((v) => `<li>${esc(String(v.labels['breaker']))}: ${['closed', 'half-open', 'open'][v.value] ?? v.value}</li>`);
  return `<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2"><title>metrics-relay aggregator${clusterName !== undefined ? ` · ${esc(clusterName)}` : ''}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left}
tr.stale td{color:#a00}tr.partly td{color:#a60}.ok{color:#070}.bad{color:#a00}</style></head><body>
<h1>metrics-relay aggregator${clusterName !== undefined ? ` · cluster ${esc(clusterName)}` : ''}</h1>
<p>Cluster: ${clusterName !== undefined ? `<b>${esc(clusterName)}</b>` : 'not named (--cluster-name)'}</p>
<p>Ready: ${notReady === undefined ? '<b class="ok">yes</b>' : `<b class="bad">no</b> (${esc(notReady)})`}</p>
<p>${store.seriesTotal} series from ${store.podTotal} pods, ${names.size} metric names, ${streams} open ingest streams; ${mib(store.bytesUsed)} of the ${mib(store.bytesLimit)} memory budget.</p>
${refusedNearLimit > 0 ? `<p class="bad">${refusedNearLimit} new ingest streams refused: this replica is near its container memory limit (raise its memory limit: see the sizing table in the README).</p>` : ''}
<h2>Pods</h2>
<table><tr><th>namespace</th><th>pod</th><th>series</th><th>fresh</th><th>newest sample age</th><th>state</th><th>last scrape error</th><th>refused at ingest</th></tr>
${rows.join('\n') || '<tr><td colspan="8">no pod has reported yet</td></tr>'}
</table>
<h2>Metric names</h2><p>${[...names].sort().map(esc).join(', ') || 'none'}</p>
<h2>Circuit breakers</h2><ul>${breakers.join('') || '<li>none (standalone mode: no Kubernetes API calls)</li>'}</ul>
<p><a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></p>
</body></html>`;
}
