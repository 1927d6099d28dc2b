import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { WireAck, WireReportRequest } from '../../../common/src/proto.js';
import { decodeAck, encodeReportRequest } from './codec.js';
import type { Dial, IngestCall } from './replica-stream.js';

const REPORT = '/metricsrelay.v1.Ingest/Report';

export interface GrpcDialOptions {
  /** Plaintext (a --standalone aggregator); else TLS. */
  insecure: boolean;
  /** CA bundle (PEM) that signed the aggregators' certificate; undefined: the default trust store. */
  caPem: string | undefined;
  /**
   * Where caPem came from, read again on every dial: a CA that rotates (a projected ConfigMap the aggregator
   * updates) is trusted from the next reconnect on. When unreadable, the last bundle read is used.
   */
  caFile?: string | undefined;
  /** Projected ServiceAccount token file, read again on every dial (the kubelet rotates it). */
  tokenFile: string | undefined;
  readFile: (path: string) => string;
  logger: Logger;
  /**
   * One connection per replica for every stream dialled (the node agent: one HTTP/2 stream per pod on it), kept
   * until the CA read changes. Else (the sidecar) a fresh connection per stream.
   */
  shareConnections?: boolean;
}

/**
 * Dials Report streams over gRPC: by default one channel (connection) per stream, so a reconnect never reuses a
 * broken one; shared, one channel per replica that grpc-js reconnects by itself.
 * With TLS the certificate must name `serverName` (the DNS name the replicas were found by) when one is given,
 * else the target host. The token goes as metadata `authorization: Bearer <token>`.
 */
export function createGrpcDial(opts: GrpcDialOptions): Dial {
  let caPem = opts.caPem;
  const readCa = (): void => {
    if (opts.insecure || !opts.caFile) return;
    try {
      caPem = opts.readFile(opts.caFile);
    } catch (err) {
      opts.logger.warn({ file: opts.caFile, err: (err as Error).message }, 'cannot read the CA file; using the bundle read before');
    }
  };
  const credentials = (): grpc.ChannelCredentials => (opts.insecure ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(caPem ? Buffer.from(caPem) : null));
  const newClient = (target: string, serverName: string | undefined): grpc.Client => {
    const options: grpc.ChannelOptions = {
      // A dead peer (no RST, e.g. a lost node) is noticed within 40s even when no Ack is due.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      // A private subchannel: a new client is a new connection.
      'grpc.use_local_subchannel_pool': 1,
    };
    if (serverName) {
      options['grpc.ssl_target_name_override'] = serverName;
      options['grpc.default_authority'] = serverName;
    }
    return new grpc.Client(target, credentials(), options);
  };
  const shared = new Map<string, { client: grpc.Client; caPem: string | undefined }>();
  const clientFor = (target: string, serverName: string | undefined): { client: grpc.Client; close(): void } => {
    readCa();
    if (!opts.shareConnections) {
      const client = newClient(target, serverName);
      return { client, close: () => client.close() };
    }
    const key = `${target} ${serverName ?? ''}`;
    let entry = shared.get(key);
    if (!entry || entry.caPem !== caPem) {
      // NOTE: streams still on the old channel keep it until they end; new ones use the new CA.
      entry?.client.close();
      entry = { client: newClient(target, serverName), caPem };
      shared.set(key, entry);
    }
    return { client: entry.client, close: () => undefined };
  };
  return (target, serverName) => {
    const { client, close } = clientFor(target, serverName);
    const metadata = new grpc.Metadata();
    if (opts.tokenFile) {
      try {
        metadata.set('authorization', `Bearer ${opts.readFile(opts.tokenFile).trim()}`);
      } catch (err) {
        // NOTE: dial anyway: the replica answers UNAUTHENTICATED, which the stream logs and retries.
        opts.logger.warn({ file: opts.tokenFile, err: (err as Error).message }, 'cannot read the token file');
      }
    }
    const call = client.makeBidiStreamRequest<WireReportRequest, WireAck>(REPORT, encodeReportRequest, decodeAck, metadata);
    return { call: call as IngestCall, close };
  };
}
