// Original file: proto/metricsrelay/v1/ingest.proto

import type { PodIdentity as _metricsrelay_v1_PodIdentity, PodIdentity__Output as _metricsrelay_v1_PodIdentity__Output } from '../../metricsrelay/v1/PodIdentity.js';
import type { Long } from '@grpc/proto-loader';

export interface Hello {
  'pod'?: (_metricsrelay_v1_PodIdentity | null);
  'interval_ms'?: (number | string | Long);
  'agent'?: (string);
}

export interface Hello__Output {
  'pod': (_metricsrelay_v1_PodIdentity__Output | null);
  'interval_ms': (number);
  'agent': (string);
}
