// Original file: proto/metricsrelay/v1/ingest.proto

import type { Long } from '@grpc/proto-loader';

export interface Ack {
  'seq'?: (number | string | Long);
  'accepted'?: (number);
  'refused'?: (number);
  'reason'?: (string);
  'max_message_bytes'?: (number);
}

export interface Ack__Output {
  'seq': (number);
  'accepted': (number);
  'refused': (number);
  'reason': (string);
  'max_message_bytes': (number);
}
