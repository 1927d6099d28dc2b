import { describe, expect, it } from 'vitest';
import type * as grpc from '@grpc/grpc-js';
import { loadIngest, type WireAck, type WireReportRequest, type WireSnapshot } from '../../../../common/src/proto.js';
import { decodeAck, encodeReportRequest } from '../../../../sidecar/src/stream/codec.js';

// The hand-written codec against the .proto itself, through proto-loader (what the aggregator decodes with).
const method = loadIngest().service['Report'] as grpc.MethodDefinition<WireReportRequest, WireAck>;
const roundTrip = (msg: WireReportRequest) => method.requestDeserialize(encodeReportRequest(msg));

describe('sidecar protobuf codec vs ingest.proto', () => {
  it('encodes a Hello', () => {
    const hello = { pod: { namespace: 'shop', name: 'web-7d4b9-x2x', uid: '6c1f0a3e-uid', labels: { app: 'web', 'app.kubernetes.io/name': 'shöp ✓' } }, interval_ms: 5000, agent: 'metrics-relay-sidecar' };
    expect(roundTrip({ hello })).toEqual({ body: 'hello', hello });
  });

  it('encodes a snapshot with definitions, packed ids/values/times, labels and pod_labels', () => {
    const snapshot: WireSnapshot = {
      seq: 2 ** 40 + 3,
      status: 'OK',
      error: '',
      scrape_time_ms: 1_767_225_600_123,
      defs: [
        { id: 0, name: 'cm_queue_depth', labels: { queue: 'orders' }, kind: 'GAUGE', window_ms: 0 },
        { id: 65535, name: 'http_requests', labels: { path: '/a', method: 'GET' }, kind: 'RATE', window_ms: 60_000 },
        { id: 300, name: 'http_requests_total', labels: {}, kind: 'COUNTER', window_ms: 0 },
        { id: 7, name: 'lat_bucket', labels: { le: '+Inf' }, kind: 'UNTYPED', window_ms: 0 },
      ],
      ids: [0, 65535, 300, 7],
      values: [3.14159, -0.0005, 1e300, 0],
      timestamps_ms: [1_767_225_600_000, 1_767_225_600_001, 0, -5],
      pod_labels: { labels: { app: 'web', tier: '' } },
    };
    expect(roundTrip({ snapshot })).toEqual({ body: 'snapshot', snapshot });
  });

  it('sends NaN and ±Inf as-is', () => {
    const snapshot = { seq: 1, status: 'OK' as const, error: '', scrape_time_ms: 1, defs: [], ids: [1, 2, 3], values: [Number.NaN, Infinity, -Infinity], timestamps_ms: [], pod_labels: null };
    const back = roundTrip({ snapshot }).snapshot!;
    expect(back.values[0]).toBeNaN();
    expect(back.values.slice(1)).toEqual([Infinity, -Infinity]);
  });

  it('encodes failed snapshots (no series), an empty pod_labels, and a Goodbye', () => {
    const failed = { seq: 9, status: 'BREAKER_OPEN' as const, error: 'GET http://127.0.0.1:8080/metrics: answered HTTP 500', scrape_time_ms: 5, defs: [], ids: [], values: [], timestamps_ms: [], pod_labels: { labels: {} } };
    expect(roundTrip({ snapshot: failed })).toEqual({ body: 'snapshot', snapshot: failed });
    expect(roundTrip({ snapshot: { ...failed, status: 'FAILED' } }).snapshot!.status).toBe('FAILED');
    expect(roundTrip({ goodbye: {} })).toEqual({ body: 'goodbye', goodbye: {} });
  });

  it('decodes Acks, skipping fields it does not know', () => {
    const ack = { seq: 2 ** 33 + 1, accepted: 1000, refused: 2, reason: 'series limit per pod (1000) reached', max_message_bytes: 4194304 };
    expect(decodeAck(method.responseSerialize(ack))).toEqual(ack);
    expect(decodeAck(method.responseSerialize({ seq: 1, accepted: 0, refused: 0, reason: '', max_message_bytes: 0 }))).toEqual({ seq: 1, accepted: 0, refused: 0, reason: '', max_message_bytes: 0 });
    const unknown = Buffer.concat([Buffer.from([0x08, 0x05]), Buffer.from([0x32, 0x02, 0x68, 0x69]), Buffer.from([0x39, 1, 2, 3, 4, 5, 6, 7, 8]), Buffer.from([0x10, 0x03])]);
    expect(decodeAck(unknown)).toEqual({ seq: 5, accepted: 3, refused: 0, reason: '', max_message_bytes: 0 });
    expect(() => decodeAck(Buffer.from([0x08, 0x80]))).toThrow('truncated');
  });
});
