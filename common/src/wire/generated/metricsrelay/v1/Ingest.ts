// Original file: proto/metricsrelay/v1/ingest.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { Ack as _metricsrelay_v1_Ack, Ack__Output as _metricsrelay_v1_Ack__Output } from '../../metricsrelay/v1/Ack.js';
import type { ReportRequest as _metricsrelay_v1_ReportRequest, ReportRequest__Output as _metricsrelay_v1_ReportRequest__Output } from '../../metricsrelay/v1/ReportRequest.js';

export interface IngestClient extends grpc.Client {
  Report(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_metricsrelay_v1_ReportRequest, _metricsrelay_v1_Ack__Output>;
  Report(options?: grpc.CallOptions): grpc.ClientDuplexStream<_metricsrelay_v1_ReportRequest, _metricsrelay_v1_Ack__Output>;
  report(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_metricsrelay_v1_ReportRequest, _metricsrelay_v1_Ack__Output>;
  report(options?: grpc.CallOptions): grpc.ClientDuplexStream<_metricsrelay_v1_ReportRequest, _metricsrelay_v1_Ack__Output>;
  
}

export interface IngestHandlers extends grpc.UntypedServiceImplementation {
  Report: grpc.handleBidiStreamingCall<_metricsrelay_v1_ReportRequest__Output, _metricsrelay_v1_Ack>;
  
}

export interface IngestDefinition extends grpc.ServiceDefinition {
  Report: MethodDefinition<_metricsrelay_v1_ReportRequest, _metricsrelay_v1_Ack, _metricsrelay_v1_ReportRequest__Output, _metricsrelay_v1_Ack__Output>
}
