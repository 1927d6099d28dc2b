import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Ack as _metricsrelay_v1_Ack, Ack__Output as _metricsrelay_v1_Ack__Output } from './metricsrelay/v1/Ack.js';
import type { Goodbye as _metricsrelay_v1_Goodbye, Goodbye__Output as _metricsrelay_v1_Goodbye__Output } from './metricsrelay/v1/Goodbye.js';
import type { Hello as _metricsrelay_v1_Hello, Hello__Output as _metricsrelay_v1_Hello__Output } from './metricsrelay/v1/Hello.js';
import type { IngestClient as _metricsrelay_v1_IngestClient, IngestDefinition as _metricsrelay_v1_IngestDefinition } from './metricsrelay/v1/Ingest.js';
import type { PodIdentity as _metricsrelay_v1_PodIdentity, PodIdentity__Output as _metricsrelay_v1_PodIdentity__Output } from './metricsrelay/v1/PodIdentity.js';
import type { PodLabels as _metricsrelay_v1_PodLabels, PodLabels__Output as _metricsrelay_v1_PodLabels__Output } from './metricsrelay/v1/PodLabels.js';
import type { ReportRequest as _metricsrelay_v1_ReportRequest, ReportRequest__Output as _metricsrelay_v1_ReportRequest__Output } from './metricsrelay/v1/ReportRequest.js';
import type { SeriesDef as _metricsrelay_v1_SeriesDef, SeriesDef__Output as _metricsrelay_v1_SeriesDef__Output } from './metricsrelay/v1/SeriesDef.js';
import type { Snapshot as _metricsrelay_v1_Snapshot, Snapshot__Output as _metricsrelay_v1_Snapshot__Output } from './metricsrelay/v1/Snapshot.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  metricsrelay: {
    v1: {
      Ack: MessageTypeDefinition<_metricsrelay_v1_Ack, _metricsrelay_v1_Ack__Output>
      Goodbye: MessageTypeDefinition<_metricsrelay_v1_Goodbye, _metricsrelay_v1_Goodbye__Output>
      Hello: MessageTypeDefinition<_metricsrelay_v1_Hello, _metricsrelay_v1_Hello__Output>
      Ingest: SubtypeConstructor<typeof grpc.Client, _metricsrelay_v1_IngestClient> & { service: _metricsrelay_v1_IngestDefinition }
      Kind: EnumTypeDefinition
      PodIdentity: MessageTypeDefinition<_metricsrelay_v1_PodIdentity, _metricsrelay_v1_PodIdentity__Output>
      PodLabels: MessageTypeDefinition<_metricsrelay_v1_PodLabels, _metricsrelay_v1_PodLabels__Output>
      ReportRequest: MessageTypeDefinition<_metricsrelay_v1_ReportRequest, _metricsrelay_v1_ReportRequest__Output>
      ScrapeStatus: EnumTypeDefinition
      SeriesDef: MessageTypeDefinition<_metricsrelay_v1_SeriesDef, _metricsrelay_v1_SeriesDef__Output>
      Snapshot: MessageTypeDefinition<_metricsrelay_v1_Snapshot, _metricsrelay_v1_Snapshot__Output>
    }
  }
}

