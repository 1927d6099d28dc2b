import { afterEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { createAggregatorStreams, type Lookup, type Replica, type AggregatorStreams } from '../../../../sidecar/src/stream/aggregator-streams.js';
import { NO_SERIES, type Snapshot } from '../../../../sidecar/src/stream/snapshot.js';

class FakeReplica implements Replica {
  readonly got: Snapshot[] = [];
  state: 'new' | 'running' | 'stopped' | 'goodbye' = 'new';
  constructor(readonly target: string, readonly serverName: string | undefined) {}
  start() {
    this.state = 'running';
  }
  publish(s: Snapshot) {
    this.got.push(s);
  }
  async goodbye() {
    this.state = 'goodbye';
  }
  stop() {
    this.state = 'stopped';
  }
}

const snap = (t: number): Snapshot => ({ status: 'OK', error: '', scrapeTimeMs: t, series: NO_SERIES, podLabels: {} });
let set: AggregatorStreams | undefined;
afterEach(async () => {
  await set?.goodbye(10);
  vi.useRealTimers();
});

function setup(spec: Parameters<typeof createAggregatorStreams>[0]['spec'], lookup: Lookup = async () => []) {
  const made: FakeReplica[] = [];
  const removed: string[] = [];
  set = createAggregatorStreams({
    spec,
    lookup,
    refreshMs: 10_000,
    logger: pino({ level: 'silent' }),
    createReplica: (t, s) => {
      const r = new FakeReplica(t, s);
      made.push(r);
      return r;
    },
    onRemoved: (t) => removed.push(t),
  });
  return { set, made, removed };
}

describe('aggregator replica discovery', () => {
  it('opens one stream per listed replica and gives every snapshot to each', async () => {
    const { set, made } = setup({ kind: 'static', targets: ['10.0.0.1:9443', '10.0.0.2:9443'] });
    await set.start();
    set.publish(snap(1));
    expect(made.map((r) => [r.target, r.serverName, r.state, r.got.length])).toEqual([
      ['10.0.0.1:9443', undefined, 'running', 1],
      ['10.0.0.2:9443', undefined, 'running', 1],
    ]);
    await set.goodbye(100);
    expect(made.map((r) => r.state)).toEqual(['goodbye', 'goodbye']);
  });

  it('follows a headless Service: new replicas get a stream and the latest snapshot, vanished ones are closed', async () => {
    vi.useFakeTimers();
    let answer: { address: string; family: number }[] = [{ address: '10.0.0.1', family: 4 }, { address: 'fd00::1', family: 6 }];
    const { set, made, removed } = setup({ kind: 'dns', host: 'relay-ingest.ns.svc', port: 9443 }, async (host) => {
      expect(host).toBe('relay-ingest.ns.svc');
      return answer;
    });
    await set.start();
    // IPv4 preferred: a dual-stack name lists each replica once per family.
    expect(made.map((r) => [r.target, r.serverName])).toEqual([['10.0.0.1:9443', 'relay-ingest.ns.svc']]);
    set.publish(snap(1));
    set.publish(snap(2));
    answer = [{ address: '10.0.0.2', family: 4 }, { address: '10.0.0.3', family: 4 }];
    await vi.advanceTimersByTimeAsync(10_000);
    expect(made.map((r) => [r.target, r.state])).toEqual([['10.0.0.1:9443', 'stopped'], ['10.0.0.2:9443', 'running'], ['10.0.0.3:9443', 'running']]);
    expect(removed).toEqual(['10.0.0.1:9443']);
    expect(made[1]!.got.map((s) => s.scrapeTimeMs)).toEqual([2]);
  });

  it('keeps its streams while the name does not resolve', async () => {
    vi.useFakeTimers();
    let failing = false;
    const { set, made } = setup({ kind: 'dns', host: 'relay', port: 1 }, async () => {
      if (failing) throw new Error('ENOTFOUND relay');
      return [{ address: '::1', family: 6 }];
    });
    await set.start();
    failing = true;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(made.map((r) => [r.target, r.state])).toEqual([['[::1]:1', 'running']]);
  });
});
