import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import type { WireAck, WireReportRequest } from '../../../../common/src/proto.js';
import { createBackoff } from '../../../../sidecar/src/stream/backoff.js';
import { ReplicaStream, type Dial, type IngestCall } from '../../../../sidecar/src/stream/replica-stream.js';
import { NO_SERIES, type Snapshot } from '../../../../sidecar/src/stream/snapshot.js';
import type { ScrapedSeries, SeriesDef } from '../../../../sidecar/src/series/builder.js';

/** A Report stream that records what is written and lets the test ack, stall and end it. */
class FakeCall extends EventEmitter implements IngestCall {
  readonly written: WireReportRequest[] = [];
  /** What write() returns (false: the transport wants a drain). */
  accepting = true;
  ended = false;
  cancelled = false;
  write(msg: WireReportRequest): boolean {
    this.written.push(msg);
    return this.accepting;
  }
  end(): void {
    this.ended = true;
  }
  cancel(): void {
    this.cancelled = true;
  }
  snapshots() {
    return this.written.filter((m) => m.snapshot).map((m) => m.snapshot!);
  }
  ack(seq: number, accepted = 1): void {
    this.emit('data', { seq, accepted, refused: 0, reason: '', max_message_bytes: 0 } satisfies WireAck);
  }
  fail(code = 14, details = 'connection refused'): void {
    this.emit('error', Object.assign(new Error(details), { code, details }));
    this.emit('status', { code, details });
  }
}

const DEFS: SeriesDef[] = Array.from({ length: 3 }, (_, i) => ({ key: `cm_s{i="${i}"}`, name: 'cm_s', family: 'cm_s', labels: { i: String(i) }, kind: 'GAUGE', windowMs: 0 }));
const series = (n: number, value: number): ScrapedSeries => ({ defs: DEFS.slice(0, n), values: DEFS.slice(0, n).map(() => value), times: DEFS.slice(0, n).map(() => 1000) });
const LABELS = Object.freeze({ app: 'web' });
const snap = (value: number, n = 3, podLabels: Snapshot['podLabels'] = LABELS): Snapshot => ({ status: 'OK', error: '', scrapeTimeMs: 1000, series: series(n, value), podLabels });

let calls: FakeCall[];
let state: boolean[];
let delivered: number;
let stream: ReplicaStream;

beforeEach(() => {
  vi.useFakeTimers();
  calls = [];
  state = [];
  delivered = 0;
  const dial: Dial = () => {
    const call = new FakeCall();
    calls.push(call);
    return { call, close: () => undefined };
  };
  stream = new ReplicaStream('10.0.0.1:9443', undefined, {
    dial,
    hello: { pod: { namespace: 'ns', name: 'web-1', uid: 'u1' }, intervalMs: 1000, agent: 'test' },
    initialLabels: LABELS,
    backoff: createBackoff(100, 1000, () => 0),
    logger: pino({ level: 'silent' }),
    onState: (up) => state.push(up),
    onDelivered: () => delivered++,
    maxMessageBytes: 4 * 1024 * 1024,
    onTrimmed: () => undefined,
  });
  stream.start();
});
afterEach(() => {
  stream.stop();
  vi.useRealTimers();
});

describe('replica stream: the latest-snapshot slot', () => {
  it('starts with a Hello naming the pod and its labels, then the snapshot with its definitions', () => {
    stream.publish(snap(1));
    const [hello, first] = calls[0]!.written;
    expect(hello!.hello).toEqual({ pod: { namespace: 'ns', name: 'web-1', uid: 'u1', labels: { app: 'web' } }, interval_ms: 1000, agent: 'test' });
    expect(first!.snapshot).toMatchObject({ seq: 1, status: 'OK', ids: [0, 1, 2], values: [1, 1, 1], pod_labels: null });
    expect(first!.snapshot!.defs.map((d) => d.name)).toEqual(['cm_s', 'cm_s', 'cm_s']);
  });

  it('keeps one snapshot in flight and only the newest waiting: a slow replica costs one slot', () => {
    const call = calls[0]!;
    stream.publish(snap(1));
    for (let v = 2; v <= 1000; v++) stream.publish(snap(v));
    expect(call.snapshots().map((s) => s.values[0])).toEqual([1]);
    call.ack(1);
    // The ack lets exactly the newest through; the 998 in between were replaced, never queued.
    expect(call.snapshots().map((s) => s.values[0])).toEqual([1, 1000]);
    expect(call.snapshots()[1]!.defs).toEqual([]); // already defined on this stream
    call.ack(2);
    expect(call.snapshots()).toHaveLength(2);
    expect(delivered).toBe(2);
    expect(state).toEqual([true]);
  });

  it('waits for drain when the transport buffer is full, then sends only the newest', () => {
    const call = calls[0]!;
    call.accepting = false;
    stream.publish(snap(1));
    call.ack(1);
    stream.publish(snap(2));
    stream.publish(snap(3));
    expect(call.snapshots()).toHaveLength(1);
    call.accepting = true;
    call.emit('drain');
    expect(call.snapshots().map((s) => s.values[0])).toEqual([1, 3]);
  });

  it('on reconnect sends the newest snapshot first, with every definition again (ids are per stream)', async () => {
    stream.publish(snap(1));
    calls[0]!.ack(1);
    stream.publish(snap(2));
    calls[0]!.fail();
    expect(state).toEqual([true, false]);
    stream.publish(snap(3));
    await vi.advanceTimersByTimeAsync(50); // backoff: 100ms ceiling, jitter 0 -> 50ms
    const fresh = calls[1]!;
    expect(fresh.written[0]!.hello).toBeDefined();
    const first = fresh.snapshots()[0]!;
    expect(first).toMatchObject({ seq: 1, values: [3, 3, 3], ids: [0, 1, 2] });
    expect(first.defs).toHaveLength(3);
  });

  it('re-sends the last snapshot when nothing newer came (a restarted replica is full at once)', async () => {
    stream.publish(snap(7));
    calls[0]!.ack(1);
    calls[0]!.fail();
    await vi.advanceTimersByTimeAsync(50);
    expect(calls[1]!.snapshots()).toMatchObject([{ seq: 1, values: [7, 7, 7] }]);
    expect(calls[1]!.snapshots()[0]!.defs).toHaveLength(3);
  });

  it('backs off with growing delays while the replica is down, and resets after it is up', async () => {
    const dialedAt: number[] = [];
    const t0 = Date.now();
    for (let i = 0; i < 6; i++) {
      calls.at(-1)!.fail();
      const before = calls.length;
      while (calls.length === before) await vi.advanceTimersByTimeAsync(10);
      dialedAt.push(Date.now() - t0);
    }
    const gaps = dialedAt.map((t, i) => t - (dialedAt[i - 1] ?? 0));
    expect(gaps).toEqual([50, 100, 200, 400, 500, 500]); // ceilings 100..1000, jitter 0 -> half
    stream.publish(snap(1));
    calls.at(-1)!.ack(1);
    calls.at(-1)!.fail();
    const before = calls.length;
    await vi.advanceTimersByTimeAsync(50);
    expect(calls.length).toBe(before + 1);
  });

  it('sends pod_labels once when the labels change, even if that snapshot was replaced in the slot', () => {
    const call = calls[0]!;
    stream.publish(snap(1));
    const relabeled = Object.freeze({ app: 'web', tier: 'front' });
    stream.publish(snap(2, 3, relabeled));
    stream.publish(snap(3, 3, relabeled));
    call.ack(1);
    expect(call.snapshots()[1]).toMatchObject({ values: [3, 3, 3], pod_labels: { labels: { app: 'web', tier: 'front' } } });
    call.ack(2);
    stream.publish(snap(4, 3, relabeled));
    expect(call.snapshots()[2]!.pod_labels).toBeNull();
  });

  it('a FAILED snapshot is acked but does not count as delivered', () => {
    stream.publish({ status: 'FAILED', error: 'GET x: HTTP 500', scrapeTimeMs: 1000, series: NO_SERIES, podLabels: LABELS });
    calls[0]!.ack(1, 0);
    expect(delivered).toBe(0);
    expect(calls[0]!.snapshots()[0]).toMatchObject({ status: 'FAILED', error: 'GET x: HTTP 500', ids: [], defs: [] });
  });

  it('goodbye writes a Goodbye, ends the stream and never reconnects', async () => {
    const call = calls[0]!;
    const done = stream.goodbye(1000);
    expect(call.written.at(-1)).toEqual({ goodbye: {} });
    expect(call.ended).toBe(true);
    call.emit('status', { code: 0, details: '' });
    await done;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toHaveLength(1);
    stream.publish(snap(1));
    expect(call.snapshots()).toHaveLength(0);
  });

  it('a dial that throws (bad target, no credentials) is retried like a failed connection', async () => {
    let attempts = 0;
    const flaky = new ReplicaStream('bad', undefined, {
      dial: () => {
        attempts++;
        throw new Error('Invalid target');
      },
      hello: { pod: { namespace: 'ns', name: 'web-1', uid: '' }, intervalMs: 1000, agent: 'test' },
      initialLabels: LABELS,
      backoff: createBackoff(100, 1000, () => 0),
      logger: pino({ level: 'silent' }),
      onState: () => undefined,
      onDelivered: () => undefined,
      maxMessageBytes: 4 * 1024 * 1024,
      onTrimmed: () => undefined,
    });
    flaky.start();
    await vi.advanceTimersByTimeAsync(1000);
    flaky.stop();
    expect(attempts).toBeGreaterThan(3);
  });

  it('goodbye gives up after its timeout when the replica does not answer', async () => {
    const done = stream.goodbye(1000);
    await vi.advanceTimersByTimeAsync(1000);
    await done;
    expect(calls[0]!.cancelled).toBe(true);
  });
});

describe('replica stream: the message limit', () => {
  const BIG: SeriesDef[] = Array.from({ length: 5 }, (_, i) => ({ key: `cm_big{i="${i}"}`, name: 'cm_big', family: 'cm_big', labels: { i: String(i), pad: 'x'.repeat(40_000) }, kind: 'GAUGE', windowMs: 0 }));
  const bigSnap = (...which: number[]): Snapshot => ({ status: 'OK', error: '', scrapeTimeMs: 1000, podLabels: LABELS, series: { defs: which.map((i) => BIG[i]!), values: which.map((i) => i), times: which.map(() => 1000) } });

  it("trims snapshots to the limit the replica's Ack tells, counts and logs it once per change", () => {
    const logs: { msg: string; families?: string; maxMessageBytes?: number }[] = [];
    const trimmed: number[] = [];
    const call = new FakeCall();
    const s = new ReplicaStream('10.0.0.2:9443', undefined, {
      dial: () => ({ call, close: () => undefined }),
      hello: { pod: { namespace: 'ns', name: 'web-1', uid: '' }, intervalMs: 1000, agent: 'test' },
      initialLabels: LABELS,
      backoff: createBackoff(100, 1000, () => 0),
      logger: pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as { msg: string }) }),
      onState: () => undefined,
      onDelivered: () => undefined,
      maxMessageBytes: 4 * 1024 * 1024,
      onTrimmed: (n) => trimmed.push(n),
    });
    s.start();
    // Under the flag's 4 MiB, three 40 kB series fit.
    s.publish(bigSnap(0, 1, 2));
    expect(call.snapshots()[0]!.ids).toEqual([0, 1, 2]);
    call.emit('data', { seq: 1, accepted: 3, refused: 0, reason: '', max_message_bytes: 65536 } satisfies WireAck);
    // The replica takes 64 KiB: the three series it holds stay though listed last, one new one fits, one goes.
    s.publish(bigSnap(3, 4, 0, 1, 2));
    const second = call.snapshots()[1]!;
    expect(second.status).toBe('OK');
    expect(second.ids).toEqual([3, 0, 1, 2]);
    expect(second.values).toEqual([3, 0, 1, 2]);
    expect(second.error).toBe("snapshot trimmed: 1 series of families cm_big over the aggregator's 65536-byte message limit");
    // A series that alone is over the limit is cut from every snapshot: counted each time, logged once.
    const huge: SeriesDef = { key: 'cm_huge', name: 'cm_huge', family: 'cm_huge', labels: { pad: 'x'.repeat(70_000) }, kind: 'GAUGE', windowMs: 0 };
    const withHuge: Snapshot = { ...bigSnap(0), series: { defs: [BIG[0]!, huge], values: [0, 9], times: [1000, 1000] } };
    call.ack(2);
    s.publish(withHuge);
    call.ack(3);
    s.publish(withHuge);
    expect(call.snapshots()[3]!.error).toBe("snapshot trimmed: 1 series of families cm_huge over the aggregator's 65536-byte message limit");
    call.ack(4);
    s.publish(bigSnap(0, 1));
    expect(call.snapshots()[4]!.error).toBe('');
    expect(trimmed).toEqual([1, 1, 1]);
    expect(logs.filter((l) => l.msg.startsWith('snapshot trimmed'))).toEqual([expect.objectContaining({ families: 'cm_big', maxMessageBytes: 65536 }), expect.objectContaining({ families: 'cm_huge' })]);
    expect(logs.filter((l) => l.msg === "snapshots fit the aggregator's message limit again")).toHaveLength(1);
    s.stop();
  });
});
