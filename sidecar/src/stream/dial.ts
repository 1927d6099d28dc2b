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
}

/**
 * Dials Report streams over gRPC, one channel (connection) per stream, so a reconnect never reuses a broken one.
 * With TLS the certificate must name `serverName` (the DNS name the replicas were found by) when one is given,
 * else the target host. The token goes as metadata `authorization: Bearer <token>`.
 */
export function createGrpcDial(opts: GrpcDialOptions): Dial {
  let caPem = opts.caPem;
  const credentials = (): grpc.ChannelCredentials => {
    if (opts.insecure) return grpc.credentials.createInsecure();
    if (opts.caFile) {
      try {
        caPem = opts.readFile(opts.caFile);
      } catch (err) {
        opts.logger.warn({ file: opts.caFile, err: (err as Error).message }, 'cannot read the CA file; using the bundle read before');
      }
    }
    return grpc.credentials.createSsl(caPem ? Buffer.from(caPem) : null);
  };
  return (target, serverName) => {
    const options: grpc.ChannelOptions = {
      // A dead peer (no RST, e.g. a lost node) is noticed within 40s even when no Ack is due.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      // A private subchannel: each dial is a fresh connection.
      'grpc.use_local_subchannel_pool': 1,
    };
    if (serverName) {
      options['grpc.ssl_target_name_override'] = serverName;
      options['grpc.default_authority'] = serverName;
    }
    const client = new grpc.Client(target, credentials(), options);
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
    return { call: call as IngestCall, close: () => client.close() };
  };
}
