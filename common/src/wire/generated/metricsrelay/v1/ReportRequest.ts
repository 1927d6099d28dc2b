// Original file: proto/metricsrelay/v1/ingest.proto

import type { Hello as _metricsrelay_v1_Hello, Hello__Output as _metricsrelay_v1_Hello__Output } from '../../metricsrelay/v1/Hello.js';
import type { Snapshot as _metricsrelay_v1_Snapshot, Snapshot__Output as _metricsrelay_v1_Snapshot__Output } from '../../metricsrelay/v1/Snapshot.js';
import type { Goodbye as _metricsrelay_v1_Goodbye, Goodbye__Output as _metricsrelay_v1_Goodbye__Output } from '../../metricsrelay/v1/Goodbye.js';

export interface ReportRequest {
  'hello'?: (_metricsrelay_v1_Hello | null);
  'snapshot'?: (_metricsrelay_v1_Snapshot | null);
  'goodbye'?: (_metricsrelay_v1_Goodbye | null);
  'body'?: "hello"|"snapshot"|"goodbye";
}

export interface ReportRequest__Output {
  'hello'?: (_metricsrelay_v1_Hello__Output | null);
  'snapshot'?: (_metricsrelay_v1_Snapshot__Output | null);
  'goodbye'?: (_metricsrelay_v1_Goodbye__Output | null);
  'body'?: "hello"|"snapshot"|"goodbye";
}
