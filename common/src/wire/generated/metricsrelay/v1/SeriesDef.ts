// Original file: proto/metricsrelay/v1/ingest.proto

import type { Kind as _metricsrelay_v1_Kind, Kind__Output as _metricsrelay_v1_Kind__Output } from '../../metricsrelay/v1/Kind.js';
import type { Long } from '@grpc/proto-loader';

export interface SeriesDef {
  'id'?: (number);
  'name'?: (string);
  'labels'?: ({[key: string]: string});
  'kind'?: (_metricsrelay_v1_Kind);
  'window_ms'?: (number | string | Long);
}

export interface SeriesDef__Output {
  'id': (number);
  'name': (string);
  'labels': ({[key: string]: string});
  'kind': (_metricsrelay_v1_Kind__Output);
  'window_ms': (number);
}
