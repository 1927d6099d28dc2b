import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** Path of the .proto file, read at runtime (it ships beside dist/ in the package and in the images). */
export const INGEST_PROTO = fileURLToPath(new URL(`${import.meta.url.includes('/dist/common/') ? '../../../' : '../../'}proto/metricsrelay/v1/ingest.proto`, import.meta.url));

/** Audience of the projected ServiceAccount token a sidecar sends (the webhook projects it, ingest checks it). */
export const INGEST_AUDIENCE = 'metrics-relay';
/** Series ids of a stream are below this (ingest.proto). */
export const SERIES_ID_LIMIT = 65536;
/**
 * Default limits of the ingest contract. The aggregator refuses past them (its flags may change them, and every Ack
 * tells the message limit); the sidecar applies the same defaults before sending, so it drops, not the aggregator.
 */
export const INGEST_LIMITS = Object.freeze({ maxMessageBytes: 4 * 1024 * 1024, maxLabelNameBytes: 128, maxLabelValueBytes: 2048, maxLabelsPerSeries: 32 });

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

// Wire types as proto-loader decodes them with LOADER_OPTIONS: generated from ingest.proto by `npm run gen:proto`
// (test/unit/common/wire-generated.test.ts fails when they are not current). Names the code uses, mapped once here.
export type { Kind__Output as Kind } from './wire/generated/metricsrelay/v1/Kind.js';
export type { ScrapeStatus__Output as ScrapeStatus } from './wire/generated/metricsrelay/v1/ScrapeStatus.js';
export type { PodIdentity__Output as WirePodIdentity } from './wire/generated/metricsrelay/v1/PodIdentity.js';
export type { Hello__Output as WireHello } from './wire/generated/metricsrelay/v1/Hello.js';
export type { SeriesDef__Output as WireSeriesDef } from './wire/generated/metricsrelay/v1/SeriesDef.js';
export type { Snapshot__Output as WireSnapshot } from './wire/generated/metricsrelay/v1/Snapshot.js';
export type { ReportRequest__Output as WireReportRequest } from './wire/generated/metricsrelay/v1/ReportRequest.js';
export type { Ack__Output as WireAck } from './wire/generated/metricsrelay/v1/Ack.js';

/** Hello.agent of the node agent (the sidecar sends metrics-relay-sidecar); the aggregator's 404s name who scrapes. */
export const NODE_AGENT = 'metrics-relay-node-agent';
