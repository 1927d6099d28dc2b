import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** Path of the .proto file, read at runtime (it ships beside dist/ in the package and in the images). */
export const INGEST_PROTO = fileURLToPath(new URL(`${import.meta.url.includes('/dist/common/') ? '../../../' : '../../'}proto/metricsrelay/v1/ingest.proto`, import.meta.url));

// NOTE: the ONE place with proto-loader options: int64 as JS numbers (ms timestamps fit), enums as strings,
// oneof name exposed as `body`, defaults filled so absent repeated fields are [].
const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

/** Client constructor and service definition of metricsrelay.v1.Ingest. */
export function loadIngest(): { Client: grpc.ServiceClientConstructor; service: grpc.ServiceDefinition } {
  const def = protoLoader.loadSync(INGEST_PROTO, LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as { metricsrelay: { v1: { Ingest: grpc.ServiceClientConstructor } } };
  const Client = pkg.metricsrelay.v1.Ingest;
  return { Client, service: Client.service };
}

// Wire types as proto-loader decodes them with LOADER_OPTIONS.
export type Kind = 'KIND_UNSPECIFIED' | 'GAUGE' | 'COUNTER' | 'RATE' | 'UNTYPED';
export type ScrapeStatus = 'OK' | 'FAILED' | 'BREAKER_OPEN';
export interface WirePodIdentity { namespace: string; name: string; uid: string; labels: Record<string, string> }
export interface WireHello { pod: WirePodIdentity | null; interval_ms: number; agent: string }
export interface WireSeriesDef { id: number; name: string; labels: Record<string, string>; kind: Kind; window_ms: number }
export interface WireSnapshot {
  seq: number;
  status: ScrapeStatus;
  error: string;
  scrape_time_ms: number;
  defs: WireSeriesDef[];
  ids: number[];
  values: number[];
  timestamps_ms: number[];
  pod_labels: { labels: Record<string, string> } | null;
}
export interface WireReportRequest {
  body?: 'hello' | 'snapshot' | 'goodbye';
  hello?: WireHello;
  snapshot?: WireSnapshot;
  goodbye?: Record<string, never>;
}
export interface WireAck { seq: number; accepted: number; refused: number; reason: string; max_message_bytes?: number }
