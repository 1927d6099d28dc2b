// Original file: proto/metricsrelay/v1/ingest.proto

import type { ScrapeStatus as _metricsrelay_v1_ScrapeStatus, ScrapeStatus__Output as _metricsrelay_v1_ScrapeStatus__Output } from '../../metricsrelay/v1/ScrapeStatus.js';
import type { SeriesDef as _metricsrelay_v1_SeriesDef, SeriesDef__Output as _metricsrelay_v1_SeriesDef__Output } from '../../metricsrelay/v1/SeriesDef.js';
import type { PodLabels as _metricsrelay_v1_PodLabels, PodLabels__Output as _metricsrelay_v1_PodLabels__Output } from '../../metricsrelay/v1/PodLabels.js';
import type { Long } from '@grpc/proto-loader';

export interface Snapshot {
  'seq'?: (number | string | Long);
  'status'?: (_metricsrelay_v1_ScrapeStatus);
  'error'?: (string);
  'scrape_time_ms'?: (number | string | Long);
  'defs'?: (_metricsrelay_v1_SeriesDef)[];
  'ids'?: (number)[];
  'values'?: (number | string)[];
  'timestamps_ms'?: (number | string | Long)[];
  'pod_labels'?: (_metricsrelay_v1_PodLabels | null);
}

export interface Snapshot__Output {
  'seq': (number);
  'status': (_metricsrelay_v1_ScrapeStatus__Output);
  'error': (string);
  'scrape_time_ms': (number);
  'defs': (_metricsrelay_v1_SeriesDef__Output)[];
  'ids': (number)[];
  'values': (number)[];
  'timestamps_ms': (number)[];
  'pod_labels': (_metricsrelay_v1_PodLabels__Output | null);
}
